"""Benchmark: laxchange's SFTP transport against OpenSSH's `sftp -b` on the same loopback sshd.

Starts its own sshd (tests/support/sshd.py) on 127.0.0.1, then measures a large file up and down with
both clients (best of several runs, connection setup included for both), and many small files
delivered with atomic rename on one connection. The last stdout line is one JSON object.

    python bench/transport.py --quick     # 32 MB, 3 runs each, < 60 s
    python bench/transport.py             # 100 MB, 5 runs each
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paramiko

from laxchange.transport import Endpoint, SftpTransport
from tests.support.sshd import Sshd, keygen

REPO = Path(__file__).resolve().parents[1]


def _openssh(batch: str, work: Path, server: Sshd, key: Path, known_hosts: Path) -> float:
    script = work / "batch"
    script.write_text(batch)
    cmd = ["sftp", "-q", "-b", str(script), "-i", str(key), "-o", f"UserKnownHostsFile={known_hosts}",
           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-P", str(server.port),
           f"{server.user}@127.0.0.1"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller file and fewer runs (< 60 s)")
    ap.add_argument("--size-mb", type=int, help="large file size in MB (default 100, quick 32)")
    ap.add_argument("--small", type=int, default=1000, help="number of 4 KB files (default 1000)")
    ap.add_argument("--runs", type=int, help="runs per measurement, best kept (default 5, quick 3)")
    args = ap.parse_args()
    size_mb = args.size_mb or (32 if args.quick else 100)
    runs = args.runs or (3 if args.quick else 5)
    size = size_mb * 1_000_000

    with tempfile.TemporaryDirectory(prefix="laxbench-") as tmp:
        work = Path(tmp)
        key = keygen(work / "id_ed25519", "bench")
        pkey = paramiko.Ed25519Key(filename=str(key))
        server = Sshd(work / "sshd", [Path(str(key) + ".pub")]).start()
        try:
            remote = work / "remote"
            remote.mkdir()
            known_hosts = work / "known_hosts"
            known_hosts.write_text(f"[127.0.0.1]:{server.port} " + Path(str(server.host_key) + ".pub").read_text())
            data = work / "big.bin"
            with data.open("wb") as fh:
                for _ in range(size_mb):
                    fh.write(os.urandom(1_000_000))
            ep = Endpoint("BENCH", server.url(remote), (server.fingerprint,))
            res: dict[str, list[float]] = {k: [] for k in ("ossh_up", "ossh_down", "lax_up", "lax_down")}
            for _ in range(runs):
                res["ossh_up"].append(_openssh(f"put {data} {remote}/o.bin\n", work, server, key, known_hosts))
                os.replace(remote / "o.bin", remote / "src.bin")
                res["ossh_down"].append(_openssh(f"get {remote}/src.bin {work}/o.bin\n", work, server, key,
                                                 known_hosts))
                os.unlink(work / "o.bin")
                os.unlink(remote / "src.bin")

                start = time.perf_counter()
                with SftpTransport(ep, lambda: pkey) as t:
                    t.put(data, "l.bin")
                res["lax_up"].append(time.perf_counter() - start)
                start = time.perf_counter()
                with SftpTransport(ep, lambda: pkey) as t:
                    t.get("l.bin", work / "l.bin")
                res["lax_down"].append(time.perf_counter() - start)
                os.unlink(work / "l.bin")
                os.unlink(remote / "l.bin")
            mbps = {k: size / 1e6 / min(v) for k, v in res.items()}

            small_dir = work / "small"
            small_dir.mkdir()
            smalls = []
            for i in range(args.small):
                p = small_dir / f"pkg-{i:05d}.lax"
                p.write_bytes(os.urandom(4096))
                smalls.append(p)
            (remote / "small").mkdir()
            with SftpTransport(ep, lambda: pkey) as t:
                start = time.perf_counter()
                for p in smalls:
                    t.put(p, p.name, folder="small")
                small_s = time.perf_counter() - start
                cipher = t._ssh.local_cipher if t._ssh else ""
            delivered = len([n for n in os.listdir(remote / "small") if not n.startswith(".")])
            assert delivered == args.small, delivered
        finally:
            server.stop()

    result = {
        "mode": "quick" if args.quick else "full",
        "size_mb": size_mb,
        "runs": runs,
        "openssh_upload_mb_s": round(mbps["ossh_up"], 1),
        "openssh_download_mb_s": round(mbps["ossh_down"], 1),
        "laxchange_upload_mb_s": round(mbps["lax_up"], 1),
        "laxchange_download_mb_s": round(mbps["lax_down"], 1),
        "vs_openssh_upload": round(mbps["lax_up"] / mbps["ossh_up"], 2),
        "vs_openssh_download": round(mbps["lax_down"] / mbps["ossh_down"], 2),
        "small_files": args.small,
        "small_files_per_s": round(args.small / small_s, 1),
        "laxchange_cipher": cipher,
        "cpus": os.cpu_count(),
    }
    print(f"{size_mb} MB upload:   OpenSSH {result['openssh_upload_mb_s']} MB/s, "
          f"laxchange {result['laxchange_upload_mb_s']} MB/s ({result['vs_openssh_upload']}x)")
    print(f"{size_mb} MB download: OpenSSH {result['openssh_download_mb_s']} MB/s, "
          f"laxchange {result['laxchange_download_mb_s']} MB/s ({result['vs_openssh_download']}x)")
    print(f"{args.small} x 4 KB with atomic rename on one connection: {result['small_files_per_s']} files/s")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
