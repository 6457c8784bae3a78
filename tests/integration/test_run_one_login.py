"""The nightly run over one real OpenSSH sshd where a school's own drop folder and its council's are
on the same server under the same login (a council hosting its schools' mailboxes, as
bench/nightly.py lays them out): the school's night collects the PEP and sends its receipt over
one SSH connection, not two (`transport.LinkShare`), and the receipt still reaches the council."""

from __future__ import annotations

from pathlib import Path

from laxchange.exchange.party import Party as LibParty
from laxchange.exchange.run import run_nightly
from laxchange.transport import RetryPolicy, SftpSettings
from tests.support.parties import Party, council_and_school, passphrase, record
from tests.support.sshd import Sshd

A, B = "LA:919", "URN:123456"


def _lib(p: Party) -> LibParty:
    return LibParty.from_home(p.home, passphrase=passphrase, clock=p.clock, keystore=p.store, directory=p.directory,
                              sftp=SftpSettings(timeout=10), retry=RetryPolicy(attempts=2))


def _logins(server: Sshd) -> int:
    return server.log.read_text().count("Accepted publickey")


def test_a_schools_collect_and_receipts_share_one_connection_to_one_server(tmp_path: Path) -> None:
    with Sshd(tmp_path / "sshd", []) as server:
        a, b, _drops = council_and_school(tmp_path, server, council=A, school=B)
        with _lib(a) as council:
            council.pack(record(4), message_type="pep-transfer", recipient=B, out=a.home.outbox / "pep.lax")
            assert [s["file"] for s in run_nightly(council).sent]
        before = _logins(server)
        with _lib(b) as school:
            report = run_nightly(school)
        assert report.failures == [], report.to_dict()  # (the fictional record's statutory clocks are overdue)
        assert report.imported is not None and report.imported.counts() == {"imported": 1}
        assert [(r.stage, r.error) for r in report.imported.receipts_sent] == [("delivered", None)]
        assert _logins(server) - before == 1, ("collect and receipts over one connection", _logins(server) - before)
        with _lib(a) as council:
            back = run_nightly(council)
        assert back.imported is not None and back.imported.counts() == {"receipt": 1}, back.to_dict()
        assert council.ledger.counts()[B]["out"] == {"delivered": 1}
