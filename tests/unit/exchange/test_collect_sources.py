"""Issue 9 #8: `collect` always reads our own drop folder; endpoints are for sending."""

from __future__ import annotations

from pathlib import Path

from laxchange.exchange.endpoints import ConfigEndpoints, DirectoryEndpoints
from laxchange.transport import Endpoint
from tests.support.parties import make_party

FPR = "SHA256:" + "A" * 43


def test_collect_reads_our_own_drop_folder_even_with_partner_endpoints(tmp_path: Path) -> None:
    school = make_party(tmp_path, "URN:123456", "Example School")
    school.store.set_endpoint("sftp://school@127.0.0.1:2222/school", [FPR])
    ConfigEndpoints(school.home).add(Endpoint("LA:919", "sftp://school@127.0.0.1:2222/placing", (FPR,)))
    ConfigEndpoints(school.home).add(Endpoint("LA:920", "sftp://school@127.0.0.1:2222/other", (FPR,)))
    assert DirectoryEndpoints(school.home).collect_sources() == ["URN:123456"]


def test_a_config_entry_for_our_own_party_is_our_drop_folder(tmp_path: Path) -> None:
    school = make_party(tmp_path, "URN:123456", "Example School")
    ConfigEndpoints(school.home).add(Endpoint("URN:123456", "sftp://school@127.0.0.1:2222/school", (FPR,)))
    ConfigEndpoints(school.home).add(Endpoint("LA:919", "sftp://school@127.0.0.1:2222/placing", (FPR,)))
    assert DirectoryEndpoints(school.home).collect_sources() == ["URN:123456"]


def test_with_no_drop_folder_of_our_own_there_is_nothing_to_collect_by_default(tmp_path: Path) -> None:
    school = make_party(tmp_path, "URN:123456", "Example School")
    ConfigEndpoints(school.home).add(Endpoint("LA:919", "sftp://school@127.0.0.1:2222/placing", (FPR,)))
    assert DirectoryEndpoints(school.home).collect_sources() == []
