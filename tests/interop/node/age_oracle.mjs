// A tiny command-line wrapper over the npm `age-encryption` package, used by laxchange's tests
// as an independent post-quantum age implementation.
//   node age_oracle.mjs gen-hybrid                      -> {"identity": ..., "recipient": ...}
//   node age_oracle.mjs recipient                       (identity in AGE_IDENTITY) -> recipient
//   node age_oracle.mjs encrypt RECIPIENT IN OUT
//   node age_oracle.mjs decrypt IN OUT                  (identity in AGE_IDENTITY)
//   node age_oracle.mjs decrypt-passphrase IN OUT       (passphrase in AGE_PASSPHRASE)
//   node age_oracle.mjs decrypt-identity-file IN OUT    (identities in the file AGE_IDENTITY_FILE: one
//                                                        per line, lines starting with # and blank ones
//                                                        ignored, as the age CLI reads identity files)
import { readFileSync, writeFileSync } from "node:fs";
import * as age from "age-encryption";

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === "gen-hybrid") {
    const identity = await age.generateHybridIdentity();
    const recipient = await age.identityToRecipient(identity);
    process.stdout.write(JSON.stringify({ identity, recipient }) + "\n");
  } else if (cmd === "recipient") {
    process.stdout.write((await age.identityToRecipient(process.env.AGE_IDENTITY)) + "\n");
  } else if (cmd === "encrypt") {
    const e = new age.Encrypter();
    e.addRecipient(args[0]);
    writeFileSync(args[2], await e.encrypt(new Uint8Array(readFileSync(args[1]))));
  } else if (cmd === "decrypt") {
    const d = new age.Decrypter();
    d.addIdentity(process.env.AGE_IDENTITY);
    writeFileSync(args[1], await d.decrypt(new Uint8Array(readFileSync(args[0]))));
  } else if (cmd === "decrypt-passphrase") {
    const d = new age.Decrypter();
    d.addPassphrase(process.env.AGE_PASSPHRASE);
    writeFileSync(args[1], await d.decrypt(new Uint8Array(readFileSync(args[0]))));
  } else if (cmd === "decrypt-identity-file") {
    const d = new age.Decrypter();
    const lines = readFileSync(process.env.AGE_IDENTITY_FILE, "utf8").split("\n");
    for (const line of lines.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))) {
      d.addIdentity(line);
    }
    writeFileSync(args[1], await d.decrypt(new Uint8Array(readFileSync(args[0]))));
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
} catch (err) {
  process.stderr.write(`age_oracle: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
}
