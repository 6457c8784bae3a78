// An independent ML-DSA-65 verifier for laxchange's DSSE vector (tests/vectors/mldsa65.json), written
// with @noble/post-quantum and no laxchange code:
//   node mldsa_verify.mjs VECTOR.json
// prints {"public_from_seed": bool, "verifies": bool, "altered_verifies": bool, "pae_sha256": hex}:
// the public key FIPS 204 KeyGen derives from the seed equals the vector's, the signature verifies over
// the PAE (computed here from the DSSE specification), and one flipped bit of the payload does not.
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";

const v = JSON.parse(readFileSync(process.argv[2], "utf8"));
const b64 = (s) => new Uint8Array(Buffer.from(s, "base64"));
const pae = (type, body) => {
  const t = Buffer.from(type, "utf8");
  return new Uint8Array(Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${body.length} `),
    Buffer.from(body)]));
};
const publicKey = b64(v.public_b64);
const { publicKey: derived } = ml_dsa65.keygen(new Uint8Array(Buffer.from(v.seed_hex, "hex")));
const message = pae(v.payload_type, b64(v.payload_b64));
const altered = message.slice();
altered[altered.length - 2] ^= 1;
const sig = b64(v.sig_b64);
process.stdout.write(JSON.stringify({
  public_from_seed: Buffer.from(derived).equals(Buffer.from(publicKey)),
  verifies: ml_dsa65.verify(sig, message, publicKey),
  altered_verifies: ml_dsa65.verify(sig, altered, publicKey),
  pae_sha256: createHash("sha256").update(message).digest("hex"),
}) + "\n");
