"""Council A and school B in two homes, over one embedded SFTP server holding each one's drop folder.

Each party's card publishes its own folder (`/council`, `/school`) with the server's host key
pinned; each key is confined to its own sub-folder of the other's folder, as in real use.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paramiko

from laxchange.clock import FixedClock
from laxchange.transport.server import EmbeddedSftpServer, ServerAccess, load_or_create_host_key
from tests.support.parties import Party, make_party

A, B = "LA:919", "URN:123456"


@dataclass(frozen=True)
class TwoHomes:
    a: Party
    b: Party
    root: Path
    fingerprint: str


def ssh_key(p: Party) -> paramiko.PKey:
    """The public half of a home's SSH client key, for the server's key-to-party map."""
    line = Path(str(p.home.ssh_client_key) + ".pub").read_text().split()
    return paramiko.Ed25519Key(data=base64.b64decode(line[1]))


@contextmanager
def two_homes(tmp_path: Path, *, overdue_deadlines_fail_run: bool = True) -> Iterator[TwoHomes]:
    """`overdue_deadlines_fail_run=False` writes config.json deadlines.run_exit_on_overdue false in both homes:
    the fictional records' statutory clocks are long overdue (tests/integration/test_deadlines.py), which a
    test about transfers does not want in its run's exit code."""
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    a = make_party(tmp_path, A, "Example Council (fictional)", clock)
    b = make_party(tmp_path, B, "Example School (fictional)", clock)
    if not overdue_deadlines_fail_run:
        for p in (a, b):
            p.home.config_file.write_text(json.dumps({"deadlines": {"run_exit_on_overdue": False}}))
            p.home.config_file.chmod(0o600)  # as laxchange writes its home files
    root = tmp_path / "server"
    access = ServerAccess.build([(A, ssh_key(a)), (B, ssh_key(b))], {"council": A, "school": B})
    server = EmbeddedSftpServer(root, load_or_create_host_key(tmp_path / "host-key"), access, host="127.0.0.1",
                                port=0).start()
    try:
        a.store.set_endpoint(f"sftp://council@127.0.0.1:{server.port}/council", [server.fingerprint])
        b.store.set_endpoint(f"sftp://school@127.0.0.1:{server.port}/school", [server.fingerprint])
        a.trust(b)
        b.trust(a)
        yield TwoHomes(a, b, root, server.fingerprint)
    finally:
        server.stop()
