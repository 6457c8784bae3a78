"""A damaged home (issue 10): every file of it laxchange reads fails as a ConfigError (exit 5)
naming the file, never as invalid data (exit 1) or a crash (exit 70)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.errors import ConfigError, ExitCode
from laxchange.exchange import ConfigEndpoints, entries
from laxchange.home import Home
from laxchange.transport import Endpoint
from laxchange.trust import PartnerDirectory
from laxchange.trust.keystore import KeyStore
from tests.support.parties import PASSPHRASE, Party, world

PARTNER = "URN:123456"


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _empty_object(p: Path) -> None:
    p.write_text("{}")


def _wrong_types(p: Path) -> None:
    doc = json.loads(p.read_text())
    for key in ("party", "fingerprint", "endpoints", "reason"):
        if key in doc:
            doc[key] = 5 if key != "endpoints" else {"LA:920": {"url": "sftp://u@h:22/x", "host_key_fingerprints": 7}}
    if "keys" in doc:
        doc["keys"] = "all of them"
    if "card" in doc:
        doc["card"] = ["not", "a", "card"]
    p.write_text(json.dumps(doc))


def _a_list(p: Path) -> None:
    p.write_text("[]")


def _directory(p: Path) -> None:
    p.unlink()
    p.mkdir()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate, "empty-object": _empty_object, "wrong-types": _wrong_types, "a-list": _a_list,
    "directory": _directory,
}


@pytest.fixture()
def a(tmp_path: Path) -> Party:
    party, _, _ = world(tmp_path)
    ConfigEndpoints(party.home).add(Endpoint(
        "LA:920", "sftp://u@127.0.0.1:2222/drop", ("SHA256:" + "A" * 43,)))
    return party


def _assert_damaged(fn: Callable[[], Any], path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        fn()
    assert exc.value.code == "home.file-damaged", exc.value.to_dict()
    assert exc.value.exit_code == ExitCode.CONFIG
    assert str(path) in exc.value.message
    assert "backup" in (exc.value.hint or "")


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_keyring_is_a_config_error(a: Party, damage: str) -> None:
    path = a.home.keys / "keyring.json"
    DAMAGE[damage](path)
    _assert_damaged(lambda: KeyStore(a.home).ring(), path)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_partner_record_is_a_config_error(a: Party, damage: str) -> None:
    path = a.home.partners / "URN_123456.json"
    DAMAGE[damage](path)
    _assert_damaged(lambda: PartnerDirectory(a.home).get(PARTNER), path)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_config_is_a_config_error(a: Party, damage: str) -> None:
    path = a.home.config_file
    DAMAGE[damage](path)
    if damage == "empty-object":  # {} is a valid config: no endpoints
        assert ConfigEndpoints(a.home).parties() == []
        return
    _assert_damaged(lambda: ConfigEndpoints(a.home).all(), path)


@pytest.mark.parametrize("damage", ["truncated", "a-list", "directory"])
def test_a_damaged_quarantine_record_is_a_config_error(a: Party, damage: str) -> None:
    a.home.quarantine.mkdir(exist_ok=True)
    path = a.home.quarantine / "x.json"
    path.write_text('{"reason": "package.tampered"}')
    DAMAGE[damage](path)
    _assert_damaged(lambda: entries(a.home), path)


@pytest.mark.parametrize("damage", ["truncated", "empty-object"])
def test_the_cli_exits_5_on_a_damaged_keyring(a: Party, damage: str) -> None:
    DAMAGE[damage](a.home.keys / "keyring.json")
    r = CliRunner().invoke(main, ["--home", str(a.home.root), "keys", "list"],
                           env={"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()})
    assert r.exit_code == ExitCode.CONFIG, r.output
    assert "keyring.json" in r.output and "Traceback" not in r.output


def test_an_intact_home_still_loads(a: Party, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(a.home.root, copy)
    home = Home(copy)
    assert KeyStore(home).ring().party == "LA:919"
    assert PartnerDirectory(home).get(PARTNER).party == PARTNER
    assert ConfigEndpoints(home).parties() == ["LA:920"]
