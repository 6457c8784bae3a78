"""Benchmark: laxchange's SFTP transport, on each SFTP backend (paramiko, and the system's OpenSSH
client: `--backend`), against OpenSSH's `sftp -b` on the same loopback sshd.

Starts its own sshd (tests/support/sshd.py) on 127.0.0.1 and measures, in paired runs:

- small packages: N files of 4 KB, each published atomically (OpenSSH: `put` to a hidden name,
  then `rename`; laxchange: `put_many` with each file's SHA-256 to check, as `laxchange send`
  does), and the same N files downloaded;
- one large file up and down.

Each pair runs every client (OpenSSH `sftp`, then each backend) back to back, rotating which goes
first, so the load of this shared machine falls on all alike; the ratio (laxchange rate /
OpenSSH rate) is taken within each pair and reported as min/median/max. All use the same cipher
(`--cipher`, default aes128-gcm@openssh.com: `-c` for OpenSSH `sftp`, `SftpSettings.ciphers`
for both backends; the JSON gives what each negotiated, and each backend's key exchange).
Two figures:

- steady state, connection set-up excluded on both sides: laxchange is timed inside its process
  after connecting; for OpenSSH the time of an empty batch (`pwd`) in the same pair is subtracted;
- whole process: both clients as a fresh process, start to exit (laxchange: interpreter start,
  imports, key exchange, authentication; OpenSSH: its post-quantum key exchange).

    python bench/transport.py --quick     # 5 pairs, 150 small files, 12 MB, both backends, < 60 s
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

from laxchange._util.fs import sha256_file
from laxchange.errors import TransportError
from laxchange.transport import Endpoint, OpenSshTransport, SftpSettings
from laxchange.transport.base import GetItem, PutItem
from laxchange.transport.ops import SEND_BATCH
from laxchange.transport.sftp import _ParamikoLink
from tests.support.sshd import Sshd, keygen
from tests.support.transport_fixtures import SFTP_BACKENDS

CIPHER = "aes128-gcm@openssh.com"


def _worker(spec: dict[str, Any]) -> None:
    """One laxchange client process: connect, do `op`, print the steady-state seconds."""
    key = paramiko.Ed25519Key(filename=spec["key"])
    ep = Endpoint("BENCH", spec["url"], (spec["fingerprint"],))
    with SFTP_BACKENDS[spec["backend"]](ep, lambda: key, SftpSettings(ciphers=(spec["cipher"],))) as t:
        t.open()
        link = t._link
        cipher = (t.cipher or "") if isinstance(t, OpenSshTransport) else \
            link.ssh.local_cipher if isinstance(link, _ParamikoLink) else ""
        kex = (t.kex or "") if isinstance(t, OpenSshTransport) else "classical (paramiko offers no PQ kex)"
        start = time.perf_counter()
        if spec["op"] == "put":  # as `laxchange send` does: put_many in batches, each file's SHA-256 to check
            files = [Path(f) for f in spec["files"]]
            digests = spec["sha256"]
            for at in range(0, len(files), SEND_BATCH):
                done = t.put_many([PutItem(f, f.name, digests[f.name]) for f in files[at:at + SEND_BATCH]],
                                  folder=spec["folder"])
                assert not any(isinstance(r, TransportError) for r in done), done
        else:  # as `laxchange collect` does: get_many in batches
            names = [Path(f).name for f in spec["files"]]
            for at in range(0, len(names), SEND_BATCH):
                got = t.get_many([GetItem(n, Path(spec["dest"]) / n) for n in names[at:at + SEND_BATCH]],
                                 folder=spec["folder"])
                assert not any(isinstance(r, TransportError) for r in got), got
        steady = time.perf_counter() - start
    print(json.dumps({"steady_s": steady, "cipher": cipher, "kex": kex}))


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
        self.cipher_seen: dict[str, str] = {}
        self.kex_seen: dict[str, str] = {}
        self.digests: dict[Path, str] = {}

    def digest(self, f: Path) -> str:
        """A file's SHA-256, taken once (outside any timing: `laxchange send` has it before connecting)."""
        if f not in self.digests:
            self.digests[f] = sha256_file(f)
        return self.digests[f]

    def openssh(self, lines: list[str]) -> float:
        script = self.work / "batch"
        script.write_text("".join(line + "\n" for line in lines))
        cmd = ["sftp", "-q", "-b", str(script), "-c", self.cipher, "-i", str(self.key),
               "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", "BatchMode=yes", "-P", str(self.server.port), f"{self.server.user}@127.0.0.1"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start

    def laxchange(self, backend: str, op: str, files: list[Path], folder: str,
                  dest: Path | None = None) -> tuple[float, float]:
        """(whole-process seconds, steady-state seconds) of one laxchange client process."""
        spec = {"backend": backend, "op": op, "files": [str(f) for f in files], "folder": folder,
                "sha256": {f.name: self.digest(f) for f in files} if op == "put" else {},
                "dest": str(dest or ""), "key": str(self.key), "url": self.server.url(self.remote),
                "fingerprint": self.server.fingerprint, "cipher": self.cipher}
        start = time.perf_counter()
        spec_file = self.work / "worker.json"  # a file, not argv: 1,000 names and digests pass argv's 128 KiB
        spec_file.write_text(json.dumps(spec))
        out = subprocess.run([sys.executable, __file__, "--worker", str(spec_file)], check=True,
                             capture_output=True, text=True).stdout
        whole = time.perf_counter() - start
        got = json.loads(out.strip().splitlines()[-1])
        self.cipher_seen[backend] = got["cipher"]
        self.kex_seen[backend] = got["kex"]
        return whole, got["steady_s"]


def _stats(xs: list[float]) -> dict[str, float]:
    return {"min": round(min(xs), 2), "median": round(statistics.median(xs), 2), "max": round(max(xs), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, smaller runs (< 60 s)")
    ap.add_argument("--size-mb", type=int, help="large file size in MB (default 100, quick 12)")
    ap.add_argument("--small", type=int, help="number of 4 KB files (default 1000, quick 150)")
    ap.add_argument("--pairs", type=int, help="paired runs (default 7, quick 5)")
    ap.add_argument("--cipher", default=CIPHER, help=f"cipher forced on both clients (default {CIPHER})")
    ap.add_argument("--skip-large", action="store_true", help="small files only")
    ap.add_argument("--skip-small", action="store_true", help="the large file only")
    ap.add_argument("--backend", choices=[*SFTP_BACKENDS, "both"], default="both",
                    help="laxchange SFTP backend(s) to measure, each paired with OpenSSH sftp (default both)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(json.loads(Path(args.worker).read_text()))
        return 0
    size_mb = args.size_mb or (12 if args.quick else 100)
    n_small = args.small or (150 if args.quick else 1000)
    pairs = args.pairs or (5 if args.quick else 7)
    backends = sorted(SFTP_BACKENDS) if args.backend == "both" else [args.backend]
    began = time.perf_counter()
    load_start = os.getloadavg()

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

            def note(what: str, ossh_s: float, lax_s: float, units: float, backend: str) -> None:
                ratios.setdefault(f"{backend}.{what}", []).append(ossh_s / lax_s)
                rates.setdefault(f"openssh_sftp.{what}", []).append(units / ossh_s)
                rates.setdefault(f"{backend}.{what}", []).append(units / lax_s)

            clients = ["ossh", *backends]
            for i in range(pairs):
                k = i % len(clients)  # each client in each position in turn
                order = clients[k:] + clients[:k]
                down = work / f"down{i}"
                down.mkdir()
                t: dict[str, float] = {}
                for who in order if not args.skip_small else []:
                    here = b.remote / f"{who}{i}"
                    here.mkdir()
                    if who == "ossh":
                        t["o_empty"] = b.openssh(["pwd"])
                        put = []
                        for p in smalls:
                            tmp_name = f"{here}/.{p.name}.part"
                            put += [f"put {p} {tmp_name}", f"rename {tmp_name} {here}/{p.name}"]
                        t["o_up"] = b.openssh(put)
                        t["o_down"] = b.openssh([f"get {here}/{p.name} {down}/o-{p.name}" for p in smalls])
                    else:
                        t[f"{who}_up"], t[f"{who}_up_ss"] = b.laxchange(who, "put", smalls, here.name)
                        (down / who).mkdir()
                        t[f"{who}_down"], t[f"{who}_down_ss"] = b.laxchange(who, "get", smalls, here.name,
                                                                            down / who)
                    assert len(os.listdir(here)) == n_small
                    shutil.rmtree(here)
                for who in backends if not args.skip_small else []:
                    note("small_up_steady", t["o_up"] - t["o_empty"], t[f"{who}_up_ss"], n_small, who)
                    note("small_up_whole", t["o_up"], t[f"{who}_up"], n_small, who)
                    note("small_down_steady", t["o_down"] - t["o_empty"], t[f"{who}_down_ss"], n_small, who)
                    note("small_down_whole", t["o_down"], t[f"{who}_down"], n_small, who)
                shutil.rmtree(down)
                if args.skip_large:
                    continue
                for who in order:
                    if who == "ossh":
                        t["o_empty"] = b.openssh(["pwd"])
                        t["o_bup"] = b.openssh([f"put {big} {b.remote}/o.bin"])
                        t["o_bdown"] = b.openssh([f"get {b.remote}/o.bin {work}/o.bin"])
                        os.unlink(work / "o.bin")
                        os.unlink(b.remote / "o.bin")
                    else:
                        t[f"{who}_bup"], t[f"{who}_bup_ss"] = b.laxchange(who, "put", [big], "")
                        (work / "dl").mkdir(exist_ok=True)
                        t[f"{who}_bdown"], t[f"{who}_bdown_ss"] = b.laxchange(who, "get", [big], "", work / "dl")
                        os.unlink(work / "dl" / "big.bin")
                        os.unlink(b.remote / "big.bin")
                mb = size_mb
                for who in backends:
                    note("large_up_steady", t["o_bup"] - t["o_empty"], t[f"{who}_bup_ss"], mb, who)
                    note("large_up_whole", t["o_bup"], t[f"{who}_bup"], mb, who)
                    note("large_down_steady", t["o_bdown"] - t["o_empty"], t[f"{who}_bdown_ss"], mb, who)
                    note("large_down_whole", t["o_bdown"], t[f"{who}_bdown"], mb, who)
        finally:
            b.server.stop()

    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full", "pairs": pairs, "small_files": n_small, "small_file_bytes": 4096,
        "size_mb": 0 if args.skip_large else size_mb, "cipher": args.cipher, "laxchange_cipher": b.cipher_seen,
        "laxchange_kex": b.kex_seen, "backends": backends, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        "ratio": {k: _stats(v) for k, v in ratios.items()},
        # the two backends against each other, within each pair (openssh rate / paramiko rate)
        "openssh_over_paramiko": {k.split(".", 1)[1]: _stats([o / p for o, p in zip(v, rates[
            "paramiko." + k.split(".", 1)[1]], strict=True)]) for k, v in rates.items()
            if k.startswith("openssh.") and "paramiko." + k.split(".", 1)[1] in rates},
        "median_rate": {k: round(statistics.median(v), 1) for k, v in rates.items()},
        "units": "files/s for small_*, MB/s for large_*", "cpus": os.cpu_count(),
        "wall_s": round(time.perf_counter() - began, 1),
    }
    rate = result["median_rate"]
    for k, v in result["ratio"].items():
        print(f"{k:34s} laxchange/OpenSSH min {v['min']:.2f} median {v['median']:.2f} max {v['max']:.2f}   "
              f"(median OpenSSH {rate['openssh_sftp.' + k.split('.', 1)[1]]}, laxchange {rate[k]})")
    for k, v in result["openssh_over_paramiko"].items():
        print(f"{k:34s} openssh/paramiko backend  min {v['min']:.2f} median {v['median']:.2f} max {v['max']:.2f}")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
