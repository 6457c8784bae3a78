"""Benchmark: laxchange's SFTP transport against OpenSSH's `sftp -b` on the same loopback sshd.

Starts its own sshd (tests/support/sshd.py) on 127.0.0.1 and measures, in paired runs:

- small packages: N files of 4 KB, each published atomically (OpenSSH: `put` to a hidden name,
  then `rename`; laxchange: `SftpTransport.put`), and the same N files downloaded;
- one large file up and down.

Each pair runs both clients back to back, in alternating order, so the load of this shared
machine falls on both alike; the ratio (laxchange rate / OpenSSH rate) is taken within each pair
and reported as min/median/max. Both clients use the same cipher (`--cipher`, default
aes128-gcm@openssh.com: `-c` for OpenSSH, `SftpSettings.ciphers` for paramiko). Two figures:

- steady state, connection set-up excluded on both sides: laxchange is timed inside its process
  after connecting; for OpenSSH the time of an empty batch (`pwd`) in the same pair is subtracted;
- whole process: both clients as a fresh process, start to exit (laxchange: interpreter start,
  imports, key exchange, authentication; OpenSSH: its post-quantum key exchange).

    python bench/transport.py --quick     # 5 pairs, 300 small files, 16 MB, < 60 s
    python bench/transport.py             # 7 pairs, 1000 small files, 100 MB

The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paramiko

from laxchange.errors import TransportError
from laxchange.transport import Endpoint, SftpSettings, SftpTransport
from laxchange.transport.base import GetItem, PutItem
from laxchange.transport.ops import SEND_BATCH
from tests.support.sshd import Sshd, keygen

CIPHER = "aes128-gcm@openssh.com"


def _worker(spec: dict[str, Any]) -> None:
    """One laxchange client process: connect, do `op`, print the steady-state seconds."""
    key = paramiko.Ed25519Key(filename=spec["key"])
    ep = Endpoint("BENCH", spec["url"], (spec["fingerprint"],))
    with SftpTransport(ep, lambda: key, SftpSettings(ciphers=(spec["cipher"],))) as t:
        t.open()
        cipher = t._ssh.local_cipher if t._ssh else ""
        start = time.perf_counter()
        if spec["op"] == "put":  # as `laxchange send` does: put_many in batches
            files = [Path(f) for f in spec["files"]]
            for at in range(0, len(files), SEND_BATCH):
                done = t.put_many([PutItem(f, f.name) for f in files[at:at + SEND_BATCH]], folder=spec["folder"])
                assert not any(isinstance(r, TransportError) for r in done), done
        else:  # as `laxchange collect` does: get_many in batches
            names = [Path(f).name for f in spec["files"]]
            for at in range(0, len(names), SEND_BATCH):
                got = t.get_many([GetItem(n, Path(spec["dest"]) / n) for n in names[at:at + SEND_BATCH]],
                                 folder=spec["folder"])
                assert not any(isinstance(r, TransportError) for r in got), got
        steady = time.perf_counter() - start
    print(json.dumps({"steady_s": steady, "cipher": cipher}))


class Bench:
    def __init__(self, work: Path, cipher: str) -> None:
        self.work, self.cipher = work, cipher
        self.key = keygen(work / "id_ed25519", "bench")
        self.server = Sshd(work / "sshd", [Path(str(self.key) + ".pub")]).start()
        self.remote = work / "remote"
        self.remote.mkdir()
        self.known_hosts = work / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.server.port} "
                                    + Path(str(self.server.host_key) + ".pub").read_text())
        self.cipher_seen = ""

    def openssh(self, lines: list[str]) -> float:
        script = self.work / "batch"
        script.write_text("".join(line + "\n" for line in lines))
        cmd = ["sftp", "-q", "-b", str(script), "-c", self.cipher, "-i", str(self.key),
               "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", "BatchMode=yes", "-P", str(self.server.port), f"{self.server.user}@127.0.0.1"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start

    def laxchange(self, op: str, files: list[Path], folder: str, dest: Path | None = None) -> tuple[float, float]:
        """(whole-process seconds, steady-state seconds) of one laxchange client process."""
        spec = {"op": op, "files": [str(f) for f in files], "folder": folder, "dest": str(dest or ""),
                "key": str(self.key), "url": self.server.url(self.remote), "fingerprint": self.server.fingerprint,
                "cipher": self.cipher}
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], check=True,
                             capture_output=True, text=True).stdout
        whole = time.perf_counter() - start
        got = json.loads(out.strip().splitlines()[-1])
        self.cipher_seen = got["cipher"]
        return whole, got["steady_s"]


def _stats(xs: list[float]) -> dict[str, float]:
    return {"min": round(min(xs), 2), "median": round(statistics.median(xs), 2), "max": round(max(xs), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, smaller runs (< 60 s)")
    ap.add_argument("--size-mb", type=int, help="large file size in MB (default 100, quick 16)")
    ap.add_argument("--small", type=int, help="number of 4 KB files (default 1000, quick 300)")
    ap.add_argument("--pairs", type=int, help="paired runs (default 7, quick 5)")
    ap.add_argument("--cipher", default=CIPHER, help=f"cipher forced on both clients (default {CIPHER})")
    ap.add_argument("--skip-large", action="store_true", help="small files only")
    ap.add_argument("--skip-small", action="store_true", help="the large file only")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(json.loads(args.worker))
        return 0
    size_mb = args.size_mb or (16 if args.quick else 100)
    n_small = args.small or (300 if args.quick else 1000)
    pairs = args.pairs or (5 if args.quick else 7)
    began = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="laxbench-") as tmp:
        work = Path(tmp)
        b = Bench(work, args.cipher)
        try:
            small_dir = work / "small"
            small_dir.mkdir()
            smalls = []
            for i in range(n_small):
                p = small_dir / f"pkg-{i:05d}.lax"
                p.write_bytes(os.urandom(4096))
                smalls.append(p)
            big = work / "big.bin"
            with big.open("wb") as fh:
                for _ in range(size_mb if not args.skip_large else 0):
                    fh.write(os.urandom(1_000_000))
            ratios: dict[str, list[float]] = {}
            rates: dict[str, list[float]] = {}

            def note(what: str, ossh_s: float, lax_s: float, units: float) -> None:
                ratios.setdefault(what, []).append(ossh_s / lax_s)
                rates.setdefault(f"openssh_{what}", []).append(units / ossh_s)
                rates.setdefault(f"laxchange_{what}", []).append(units / lax_s)

            for i in range(pairs):
                order = ["ossh", "lax"] if i % 2 == 0 else ["lax", "ossh"]
                o_dir, l_dir = b.remote / f"o{i}", b.remote / f"l{i}"
                o_dir.mkdir()
                l_dir.mkdir()
                down = work / f"down{i}"
                down.mkdir()
                t: dict[str, float] = {}
                for who in order if not args.skip_small else []:
                    if who == "ossh":
                        t["o_empty"] = b.openssh(["pwd"])
                        put = []
                        for p in smalls:
                            tmp_name = f"{o_dir}/.{p.name}.part"
                            put += [f"put {p} {tmp_name}", f"rename {tmp_name} {o_dir}/{p.name}"]
                        t["o_up"] = b.openssh(put)
                        t["o_down"] = b.openssh([f"get {o_dir}/{p.name} {down}/o-{p.name}"
                                                 for p in smalls])
                    else:
                        t["l_up"], t["l_up_ss"] = b.laxchange("put", smalls, l_dir.name)
                        (down / "l").mkdir()
                        t["l_down"], t["l_down_ss"] = b.laxchange("get", smalls, l_dir.name, down / "l")
                if not args.skip_small:
                    assert len(os.listdir(o_dir)) == len(os.listdir(l_dir)) == n_small
                    note("small_up_steady", t["o_up"] - t["o_empty"], t["l_up_ss"], n_small)
                    note("small_up_whole", t["o_up"], t["l_up"], n_small)
                    note("small_down_steady", t["o_down"] - t["o_empty"], t["l_down_ss"], n_small)
                    note("small_down_whole", t["o_down"], t["l_down"], n_small)
                shutil.rmtree(o_dir)
                shutil.rmtree(l_dir)
                shutil.rmtree(down)
                if args.skip_large:
                    continue
                for who in order:
                    if who == "ossh":
                        t["o_empty"] = b.openssh(["pwd"])
                        t["o_bup"] = b.openssh([f"put {big} {b.remote}/o.bin"])
                        t["o_bdown"] = b.openssh([f"get {b.remote}/o.bin {work}/o.bin"])
                        os.unlink(work / "o.bin")
                    else:
                        t["l_bup"], t["l_bup_ss"] = b.laxchange("put", [big], "")
                        (work / "dl").mkdir(exist_ok=True)
                        t["l_bdown"], t["l_bdown_ss"] = b.laxchange("get", [big], "", work / "dl")
                        os.unlink(work / "dl" / "big.bin")
                mb = size_mb
                note("large_up_steady", t["o_bup"] - t["o_empty"], t["l_bup_ss"], mb)
                note("large_up_whole", t["o_bup"], t["l_bup"], mb)
                note("large_down_steady", t["o_bdown"] - t["o_empty"], t["l_bdown_ss"], mb)
                note("large_down_whole", t["o_bdown"], t["l_bdown"], mb)
                os.unlink(b.remote / "o.bin")
                os.unlink(b.remote / "big.bin")
        finally:
            b.server.stop()

    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full", "pairs": pairs, "small_files": n_small, "small_file_bytes": 4096,
        "size_mb": 0 if args.skip_large else size_mb, "cipher": args.cipher, "laxchange_cipher": b.cipher_seen,
        "ratio": {k: _stats(v) for k, v in ratios.items()},
        "median_rate": {k: round(statistics.median(v), 1) for k, v in rates.items()},
        "units": "files/s for small_*, MB/s for large_*", "cpus": os.cpu_count(),
        "wall_s": round(time.perf_counter() - began, 1),
    }
    rate = result["median_rate"]
    for k, v in result["ratio"].items():
        print(f"{k:20s} laxchange/OpenSSH min {v['min']:.2f} median {v['median']:.2f} max {v['max']:.2f}   "
              f"(median OpenSSH {rate['openssh_' + k]}, laxchange {rate['laxchange_' + k]})")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
