#!/usr/bin/env python3
"""Benchmark the package format: pack+open against the bare primitives it needs, streaming
against pyrage and in-memory ChaCha20-Poly1305, peak RSS. One core, paired rounds.

    .venv/bin/python bench/package.py [--quick]

pack+open: `package.pack` then `package.open_package` of one PEP transfer in memory (keys
unlocked, no schema validation), for a 10 KB and a 1 MB record, with the default keys
(mlkem768x25519 + Ed25519) and with ML-DSA-65 added. Its ceiling, measured in the same rounds
(A, B, A, B ...), is the bare operations one such package needs, called straight on
`cryptography` and `hashlib` with the byte counts of a real package of that size: the
ML-KEM-768+X25519 HPKE seal and open of age's mlkem768x25519 stanza, age's key schedule on each
side (HKDF of the header key and HMAC-SHA-256 of the header, HKDF of the payload key), each
signature algorithm's sign and verify of the manifest and of the statement (their PAE bytes),
ChaCha20-Poly1305 over the age plaintext in 64 KiB chunks both ways, and SHA-256 of the age file
twice (packer and opener). Everything else (JSON, base64, the age header's text, checks, key
lookups, file objects) is what the ratio charges to laxchange.

Each pack+open call is given the record with a fresh copy of its long text (decoded from UTF-8,
as reading a record file makes it): packing the same string object again would let an encoder
reuse the UTF-8 form CPython caches on a string, which no real record gets.

A third reference, the *straight line* (bench/support/straight.py), is the format written straight
through, one function a side, with the checks the format requires of a reader inline but none of
laxchange's lookups, messages or streaming: a bound on how close a conforming Python reader and
writer could come to the primitives. It makes and reads real packages (checked before timing).

Validation is compared like with like: pack+open with schema + domain validation on both sides,
paired with the same pack+open without it. Validation's own throughput is bench/validate.py.

Keys are throwaway (a temporary directory, low scrypt work factor: key loading is not what is
measured). The last line of output is one JSON object (the figures in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.paired import paired, pin_one_core, rate_ratios, rates, spread
from bench.support.primitives import CHUNK, Bare, shape_of
from bench.support.straight import StraightLine
from laxchange import age, package, samples
from laxchange._util import b64, jsonio
from laxchange.home import Home
from laxchange.models import schemastore
from laxchange.trust import PartnerDirectory, build_card
from laxchange.trust.keystore import ALG_HYBRID, KeyStore

MiB = 1024 * 1024
SIZES = {"10k": 10 * 1024, "1m": MiB}
GOALS = {"10k": 0.8, "1m": 0.6}


def _pw(purpose: str, *, confirm: bool = False) -> bytes:
    return b"benchmark keys, fictional parties only"


def parties(root: Path, *, mldsa: bool = False, alg: str = ALG_HYBRID) -> tuple[KeyStore, PartnerDirectory,
                                                                               KeyStore, PartnerDirectory]:
    out = []
    for party, name in (("LA:919", "Bench Council"), ("URN:123456", "Bench School")):
        store = KeyStore(Home(root / party.replace(":", "_")), passphrase=_pw, work_factor=10, ssh_kdf_rounds=1)
        store.init(party, name, encryption_alg=alg, mldsa=mldsa)
        out.append((store, PartnerDirectory(store.home)))
    (sa, da), (sb, db) = out
    ca, fa = build_card(sa)
    cb, fb = build_card(sb)
    da.add(cb, fingerprint=fb)
    db.add(ca, fingerprint=fa)
    return sa, da, sb, db


FILLER = "Fictional benchmark text about settled arrangements and support in school, agreed with Zoë's carer.\n"


def record_of(size: int) -> dict[str, Any]:
    """A valid fictional PEP transfer whose canonical JSON is `size` bytes (long narrative text)."""
    doc = samples.generate("pep-transfer", 1, 1)[0]
    pep = doc["record"]["pep"]
    base = pep["current_arrangements"] + "\n"
    pep["current_arrangements"] = base + FILLER * (size // len(FILLER) + 1)
    over = len(jsonio.dumps_canonical(doc)) - size
    while over > 0:  # trim characters (ASCII or not, and escaped newlines) until the size fits
        pep["current_arrangements"] = pep["current_arrangements"][:-max(1, over // 3)]
        over = len(jsonio.dumps_canonical(doc)) - size
    pep["current_arrangements"] += "." * -over
    assert len(jsonio.dumps_canonical(doc)) == size
    return doc


class Case:
    """One configuration (size, signature algorithms): pack+open, and its bare primitives."""

    def __init__(self, root: Path, size: int, mldsa: bool) -> None:
        self.sa, self.da, self.sb, self.db = parties(root, mldsa=mldsa)
        self.doc = record_of(size)
        self.size = size
        self.algs = list(self.sa.ring().required_signature_algorithms)
        buf = io.BytesIO()
        package.pack(self.doc, message_type="pep-transfer", recipient="URN:123456", keystore=self.sa,
                     directory=self.da, out=buf, validate=False)
        self.package_bytes = len(buf.getvalue())
        self.shape = self._shape(buf)

    def fresh_doc(self) -> Callable[[], dict[str, Any]]:
        """The record with a new copy of its long text each call (see the module docstring)."""
        doc = self.doc
        text = doc["record"]["pep"]["current_arrangements"].encode("utf-8")

        def fresh() -> dict[str, Any]:
            record = dict(doc["record"])
            record["pep"] = {**record["pep"], "current_arrangements": text.decode("utf-8")}
            return {**doc, "record": record}

        return fresh

    def pack_open(self, validate: bool = False) -> Callable[[], object]:
        doc, sa, da, sb, db = self.doc, self.sa, self.da, self.sb, self.db
        fresh = self.fresh_doc()

        def once() -> package.Opened:
            buf = io.BytesIO()
            package.pack(fresh(), message_type="pep-transfer", recipient="URN:123456", keystore=sa, directory=da,
                         out=buf, validate=validate)
            buf.seek(0)
            return package.open_package(buf, keystore=sb, directory=db, validate=validate)

        assert once().document == doc
        return once

    def json_floor(self) -> Callable[[], object]:
        """What Python must do besides the primitives whatever the code around it: JSON-encode the
        statement (a fresh record, the fastest encoder that writes the statement's bytes:
        `package.compact_json`), base64 it into the envelope and back, parse it strictly (duplicate
        keys refused: `jsonio.loads_strict`). Not a ceiling: a second reference, to show how much
        of the gap is JSON and how much the rest."""
        fresh = self.fresh_doc()
        head = {"_type": package.STATEMENT_TYPE, "transfer_id": "0" * 32, "sender": "LA:919",
                "recipient": "URN:123456", "created": "2026-11-24T12:00:00Z", "expires": "2026-12-24T12:00:00Z",
                "schema": self.doc["schema"], "message_type": "pep-transfer", "schema_version": "1.0.0"}

        def once() -> None:
            body = package.compact_json({**head, "document": fresh(), "attachments": []})
            jsonio.loads_strict(b64.decode_canonical(b64.encode(body)) or b"", max_bytes=package.MAX_STATEMENT_BYTES)

        once()
        return once

    def _shape(self, buf: io.BytesIO) -> dict[str, int]:
        """The byte counts the primitives work on, read from a real package."""
        return shape_of(buf.getvalue(), self.sb)

    def straight(self) -> StraightLine:
        """The format written straight through (bench/support/straight.py) on this case's keys,
        checked to make and read real packages."""
        now = self.sa.clock.now()
        enc_key = self.da.get("URN:123456").encryption_key_at(now)
        recipient, identity = enc_key.recipient(), self.sb.identity(enc_key.kid)
        assert isinstance(recipient, age.HybridRecipient) and isinstance(identity, age.HybridIdentity)
        name, version = schemastore.identify(self.doc, "record")
        line = StraightLine(sender="LA:919", recipient="URN:123456", signers=self.sa.signers(now),
                            recipient_key=enc_key.kid, recipient_public=recipient, identity=identity,
                            schema=self.doc["schema"], message_type=name, version=version)
        made = line.pack(self.doc, now, package.DEFAULT_EXPIRES_IN)
        opened = package.open_package(io.BytesIO(made), keystore=self.sb, directory=self.db, validate=False)
        assert opened.document == self.doc, "laxchange opens what the straight line packs"
        real = io.BytesIO()
        package.pack(self.doc, message_type="pep-transfer", recipient="URN:123456", keystore=self.sa,
                     directory=self.da, out=real, validate=False)
        assert line.open(real.getvalue(), now) == self.doc, "the straight line opens what laxchange packs"
        return line

    def straight_line(self) -> Callable[[], object]:
        """pack+open of the record, straight through, with none of laxchange's checks (`straight`)."""
        line, fresh, clock = self.straight(), self.fresh_doc(), self.sa.clock

        def once() -> object:
            return line.open(line.pack(fresh(), clock.now(), package.DEFAULT_EXPIRES_IN), clock.now())

        return once

    def primitives(self) -> Callable[[], object]:
        """The bare operations of one pack + open of this shape, straight on cryptography/hashlib."""
        bare = Bare(self.shape, self.algs)

        def once() -> None:
            bare.open(bare.pack())

        once()
        return once


CASES = [key + suffix for suffix in ("", "_mldsa") for key in SIZES]


def _both(res: dict[str, Any], key: str) -> str:
    """`res[key]` and `res[key + "_cpu"]` as min/median/max, wall then CPU."""
    w, c = res[key], res[key + "_cpu"]
    return (f"{w['min']:.2f}/{w['median']:.2f}/{w['max']:.2f} wall, "
            f"{c['min']:.2f}/{c['median']:.2f}/{c['max']:.2f} CPU")


def bench_pack_open(rounds: int, seconds: float, cases: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mldsa in (False, True):
            for key, size in SIZES.items():
                name = key + ("_mldsa" if mldsa else "")
                if name not in cases:
                    continue
                case = Case(Path(tmp) / name, size, mldsa)
                prim, floor = case.primitives(), case.json_floor()

                def prim_and_json(prim: Callable[[], object] = prim, floor: Callable[[], object] = floor) -> None:
                    prim()
                    floor()

                arms = [("primitives", prim), ("pack_open", case.pack_open()), ("primitives_and_json", prim_and_json),
                        ("straight_line", case.straight_line())]
                if key == "10k" and not mldsa:
                    arms.append(("pack_open_validated", case.pack_open(validate=True)))
                t = paired(arms, rounds=rounds, seconds=seconds)
                vs = rate_ratios(t.wall, "pack_open", "primitives")
                res: dict[str, Any] = {
                    "record_bytes": size, "package_bytes": case.package_bytes, "signatures": case.algs,
                    "encryption": "mlkem768x25519", "bytes": case.shape,
                    "packs_per_s": rates(t.wall["pack_open"]), "primitives_per_s": rates(t.wall["primitives"]),
                    "vs_primitives": spread(vs),
                    "vs_primitives_cpu": spread(rate_ratios(t.cpu, "pack_open", "primitives")),
                    "vs_primitives_and_json": spread(rate_ratios(t.wall, "pack_open", "primitives_and_json")),
                    "primitives_and_json_vs_primitives": spread(rate_ratios(t.wall, "primitives_and_json",
                                                                            "primitives")),
                    "vs_primitives_and_json_cpu": spread(rate_ratios(t.cpu, "pack_open", "primitives_and_json")),
                    "primitives_and_json_vs_primitives_cpu": spread(rate_ratios(t.cpu, "primitives_and_json",
                                                                                "primitives")),
                    "straight_line_per_s": rates(t.wall["straight_line"]),
                    "straight_line_vs_primitives": spread(rate_ratios(t.wall, "straight_line", "primitives")),
                    "straight_line_vs_primitives_cpu": spread(rate_ratios(t.cpu, "straight_line", "primitives")),
                    "vs_straight_line": spread(rate_ratios(t.wall, "pack_open", "straight_line")),
                    "vs_straight_line_cpu": spread(rate_ratios(t.cpu, "pack_open", "straight_line")),
                    "goal": GOALS[key], "goal_met": spread(vs)["median"] >= GOALS[key],
                }
                if "pack_open_validated" in t.wall:
                    res["packs_per_s_with_validation"] = rates(t.wall["pack_open_validated"])
                    res["with_validation_vs_without"] = spread(rate_ratios(t.wall, "pack_open_validated",
                                                                           "pack_open"))
                    res["with_validation_vs_without_cpu"] = spread(rate_ratios(t.cpu, "pack_open_validated",
                                                                               "pack_open"))
                out[name] = res
                print(f"pack+open {name} ({size} B record, {'+'.join(case.algs)}): "
                      f"{res['packs_per_s']['median']:.0f}/s, primitives {res['primitives_per_s']['median']:.0f}/s, "
                      f"ratio min/median/max {_both(res, 'vs_primitives')} (goal {GOALS[key]})", flush=True)
                print(f"  vs primitives + the statement's JSON and base64: {_both(res, 'vs_primitives_and_json')}; "
                      f"that reference alone vs the primitives {_both(res, 'primitives_and_json_vs_primitives')}",
                      flush=True)
                print(f"  the format written straight through: {_both(res, 'straight_line_vs_primitives')} of the "
                      f"primitives; laxchange {_both(res, 'vs_straight_line')} of it", flush=True)
                if "with_validation_vs_without" in res:
                    print(f"  with validation on both sides: {res['packs_per_s_with_validation']['median']:.0f}/s, "
                          f"vs without {_both(res, 'with_validation_vs_without')}", flush=True)
    return out


def _make_file(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        block = os.urandom(MiB)
        while left:
            n = min(left, MiB)
            fh.write(block[:n])
            left -= n


def bench_stream(size: int, tmp: Path, rounds: int) -> dict[str, Any]:
    """File -> file streaming, paired per round: ours against pyrage, a plain file copy and
    ChaCha20-Poly1305 over the same bytes in memory (the ceiling of any age implementation)."""
    src = tmp / "attachment.bin"
    _make_file(src, size)
    ident = age.X25519Identity.generate()
    recip = ident.recipient()
    py_ident = pyrage.x25519.Identity.from_str(str(ident))
    py_recip = pyrage.x25519.Recipient.from_str(str(recip))
    pq = age.HybridIdentity.generate()
    pq_recip = pq.recipient()
    aead = ChaCha20Poly1305(ChaCha20Poly1305.generate_key())
    block = memoryview(os.urandom(CHUNK))
    sealed = aead.encrypt(bytes(12), block, None)

    def ours_enc(r: age.Recipient, out: Path) -> None:
        with open(src, "rb") as i, open(out, "wb") as o:
            age.encrypt([r], i, o)

    def ours_dec(idn: age.Identity, inp: Path, out: Path) -> None:
        with open(inp, "rb") as i, open(out, "wb") as o:
            age.decrypt([idn], i, o)

    def chacha_enc() -> None:
        for _ in range(size // CHUNK):
            aead.encrypt(bytes(12), block, None)

    def chacha_dec() -> None:
        for _ in range(size // CHUNK):
            aead.decrypt(bytes(12), sealed, None)

    ours_enc(recip, tmp / "ours.age")  # the decrypt arms need their inputs before the first round
    pyrage.encrypt_file(str(src), str(tmp / "py.age"), [py_recip])
    ours_enc(pq_recip, tmp / "pq.age")
    arms = [
        ("ours_encrypt", lambda: ours_enc(recip, tmp / "ours.age")),
        ("pyrage_encrypt", lambda: pyrage.encrypt_file(str(src), str(tmp / "py.age"), [py_recip])),
        ("ours_decrypt", lambda: ours_dec(ident, tmp / "ours.age", tmp / "ours.out")),
        ("pyrage_decrypt", lambda: pyrage.decrypt_file(str(tmp / "py.age"), str(tmp / "py.out"), [py_ident])),
        ("ours_pq_encrypt", lambda: ours_enc(pq_recip, tmp / "pq.age")),
        ("ours_pq_decrypt", lambda: ours_dec(pq, tmp / "pq.age", tmp / "pq.out")),
        ("file_copy", lambda: shutil.copyfile(src, tmp / "copy.bin")),
        ("chacha_encrypt_memory", chacha_enc),
        ("chacha_decrypt_memory", chacha_dec),
    ]
    t = paired(arms, rounds=rounds, calls=1).wall
    ours_dec(ident, tmp / "py.age", tmp / "cross.out")  # cross-check: we decrypt pyrage's file
    assert os.path.getsize(tmp / "cross.out") == size
    mib = size / MiB
    res: dict[str, Any] = {"attachment_mib": size // MiB,
                           "mib_s": {k: spread([mib / x for x in v], 1) for k, v in t.items()}}
    for ours, ref in (("ours_encrypt", "pyrage_encrypt"), ("ours_decrypt", "pyrage_decrypt"),
                      ("ours_encrypt", "chacha_encrypt_memory"), ("ours_decrypt", "chacha_decrypt_memory"),
                      ("ours_encrypt", "file_copy"), ("ours_decrypt", "file_copy")):
        res[f"{ours}_vs_{ref}"] = spread(rate_ratios(t, ours, ref), 2)
    for f in tmp.iterdir():
        f.unlink()
    return res


def rss_child(size: int) -> None:
    """Run in a subprocess: pack and open a package with a `size`-byte attachment, print peak RSS."""
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        sa, da, sb, db = parties(tmp)
        att = tmp / "attachment.bin"
        _make_file(att, size)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        package.pack(record_of(SIZES["10k"]), message_type="pep-transfer", recipient="URN:123456", keystore=sa,
                     directory=da, out=tmp / "big.lax", attachments=[att], validate=False)
        opened = package.open_package(tmp / "big.lax", keystore=sb, directory=db, validate=False,
                                      attachments_dir=tmp / "att", workdir=tmp)
        assert (tmp / "att" / "attachment.bin").stat().st_size == size and opened.attachments
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short run (< 60 s): 5 rounds, 32 MiB stream")
    ap.add_argument("--rounds", type=int, default=None, help="paired rounds (default 9, quick 5)")
    ap.add_argument("--only", choices=["pack", "stream", "rss"], action="append", default=None,
                    help="run only these parts (repeatable; default all)")
    ap.add_argument("--case", choices=CASES, action="append", default=None,
                    help="pack+open only these record sizes / signature sets (repeatable; default all)")
    ap.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child is not None:
        rss_child(args.rss_child)
        return
    parts = set(args.only or ["pack", "stream", "rss"])
    rounds = args.rounds or (5 if args.quick else 9)
    seconds = 0.12 if args.quick else 0.4
    big = (32 if args.quick else 256) * MiB
    cpu = pin_one_core()
    t0 = time.perf_counter()
    result: dict[str, Any] = {"bench": "package", "quick": args.quick, "rounds": rounds, "cpu": cpu}
    if "pack" in parts:
        po = bench_pack_open(rounds, seconds, args.case or CASES)
        result["pack_open"] = po
        for name, r in po.items():
            result[f"vs_primitives_{name}"] = r["vs_primitives"]["median"]
    if "stream" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            st = bench_stream(big, Path(tmp), rounds)
        result["stream"] = st
        for k, v in st["mib_s"].items():
            print(f"{k}: {v['min']:.0f}/{v['median']:.0f}/{v['max']:.0f} MiB/s ({big // MiB} MiB)")
        for k, v in st.items():
            if "_vs_" in k:
                print(f"{k}: {v['min']:.2f}/{v['median']:.2f}/{v['max']:.2f}")
    if "rss" in parts:
        child = subprocess.run([sys.executable, __file__, "--rss-child", str(big)], capture_output=True, text=True,
                               check=True)
        rss = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"peak RSS packing+opening a package with a {big // MiB} MiB attachment: {rss['peak_rss_mb']} MB "
              f"(interpreter and libraries before packing: {rss['rss_before_mb']} MB)")
        result.update(rss, rss_attachment_mib=big // MiB)
    result["python"] = platform.python_version()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
