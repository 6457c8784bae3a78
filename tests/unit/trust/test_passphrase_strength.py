"""A new passphrase that could be guessed is refused where it is chosen (`init`, `keys passphrase`),
with nothing written; one already in use is never judged (an existing home keeps working)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange import age
from laxchange.errors import UsageError
from laxchange.home import Home
from laxchange.passphrase import MIN_STRENGTH, check_new_passphrase
from laxchange.trust.keystore import KeyStore
from tests.support.parties import PASSPHRASE, T0, WORK_FACTOR, FixedClock, make_party

WEAK = [b"Password123!", b"Summer2026", b"wrong", b"qwertyuiop", b"aaaaaaaaaaaaaaaaaaaa", b"laxchange919",
        b"Example Council", b"LA919", b"Example Council passphrase", b"garden piano"]
STRONG = [PASSPHRASE, b"kettle marmalade windowsill otter", b"purple tiger window",
          "ünïcödé wörds ärë fïnë tôô".encode()]


@pytest.mark.parametrize("weak", WEAK)
def test_a_guessable_passphrase_is_refused_without_repeating_it(weak: bytes) -> None:
    with pytest.raises(UsageError) as exc:
        check_new_passphrase(weak, about=["LA:919", "Example Council"])
    err = exc.value
    assert err.code == "passphrase.weak" and err.exit_code == 2
    assert err.details["score"] < MIN_STRENGTH == err.details["required"]
    assert "random words" in (err.hint or "") and "nothing was changed" in (err.hint or "")
    shown = json.dumps(err.to_dict()) + err.message + (err.hint or "")
    assert weak.decode() not in shown, "the passphrase itself is never in a message"


@pytest.mark.parametrize("strong", STRONG)
def test_a_passphrase_of_several_uncommon_words_passes(strong: bytes) -> None:
    check_new_passphrase(strong, about=["LA:919", "Example Council"])


def test_what_an_attacker_knows_of_us_counts_as_guessed() -> None:
    check_new_passphrase(b"Hartfield Borough Council", about=["LA:919", "Example Council"])  # not ours: fine
    with pytest.raises(UsageError, match="too easy to guess"):
        check_new_passphrase(b"Hartfield Borough Council", about=["LA:888", "Hartfield Borough Council"])


def test_a_very_long_or_undecodable_passphrase_is_judged_not_crashed_on() -> None:
    check_new_passphrase(b"kettle marmalade lighthouse " * 40)  # beyond zxcvbn's own 72-character limit
    with pytest.raises(UsageError, match="too easy to guess"):
        check_new_passphrase(b"\xff" * 20)  # not UTF-8 (a passphrase file may hold anything): judged, not a crash


def test_init_with_a_weak_passphrase_writes_nothing_and_a_strong_one_then_works(tmp_path: Path) -> None:
    given = [b"Password123!", PASSPHRASE]
    asked: list[str] = []

    def source(purpose: str, *, confirm: bool = False) -> bytes:
        asked.append(purpose)
        return given[min(len(asked) - 1, 1)]

    home = Home(tmp_path / "h")
    store = KeyStore(home, passphrase=source, clock=FixedClock(T0), work_factor=WORK_FACTOR, ssh_kdf_rounds=1)
    with pytest.raises(UsageError) as exc:
        store.init("LA:919", "Example Council")
    assert exc.value.code == "passphrase.weak"
    assert not store.exists() and not home.root.exists(), "nothing written before the passphrase was judged"
    store.init("LA:919", "Example Council")  # asked again, not the refused one kept
    key_file = next(home.keys.glob("*.age"))
    assert age.decrypt_bytes([age.ScryptIdentity(PASSPHRASE)], key_file.read_bytes())


def test_changing_to_a_weak_passphrase_changes_no_file(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council")
    before = {p: p.read_bytes() for p in a.store.private_files()}
    with pytest.raises(UsageError) as exc:
        a.store.change_passphrase(b"Example Council 2026")
    assert exc.value.code == "passphrase.weak"
    assert {p: p.read_bytes() for p in a.store.private_files()} == before
    assert not a.store.passphrase_marker.exists()


def test_an_existing_weak_passphrase_still_opens_the_keys(tmp_path: Path) -> None:
    """Homes made before the check keep working: only a new passphrase is judged."""
    a = make_party(tmp_path, "LA:919", "Example Council")
    weak = b"Password123!"
    for path in a.store.private_files():  # under a weak passphrase, as an older release could leave them
        rewritten = a.store._reencrypt(path, path.read_bytes(), PASSPHRASE, weak)
        assert rewritten is not None
        path.write_bytes(rewritten)
    again = KeyStore(a.home, passphrase=lambda *_a, **_k: weak, clock=a.clock, work_factor=WORK_FACTOR)
    assert again.signers(a.clock.now())


def test_the_cli_says_why_with_exit_2_and_no_home(tmp_path: Path) -> None:
    from laxchange.cli import main

    home = tmp_path / "h"
    r = CliRunner().invoke(main, ["--home", str(home), "init", "--party", "LA:919", "--name", "Example Council",
                                  "--kdf-work-factor", "10"],
                           env={"LAXCHANGE_PASSPHRASE": "Summer2026", "LAXCHANGE_PASSPHRASE_FILE": ""})
    assert r.exit_code == 2, r.output
    assert "is too easy to guess" in r.stderr and "Traceback" not in r.output + r.stderr
    assert "Summer2026" not in r.output + r.stderr
    assert not (home / "keys").exists() and not (home / "keyring.json").exists()


def test_a_change_begun_before_the_check_can_still_be_finished(tmp_path: Path) -> None:
    """`keys passphrase` run again finishes an interrupted change with the same two passphrases, as
    operators.md says, even to one the check would now refuse: the files are already split between
    the two, and a stronger third would open none of the finished ones."""
    a = make_party(tmp_path, "LA:919", "Example Council")
    weak = b"Example Council 2026"
    files = a.store.private_files()
    first = files[0]  # as an older release's interrupted change left it: one file under the new passphrase
    rewritten = a.store._reencrypt(first, first.read_bytes(), PASSPHRASE, weak)
    assert rewritten is not None
    first.write_bytes(rewritten)
    a.store.passphrase_marker.write_text("{}")
    assert a.store.change_passphrase(weak) == {"files": len(files), "changed": len(files) - 1}
    assert not a.store.passphrase_marker.exists()
    with pytest.raises(UsageError, match="too easy to guess"):  # a new change to it is judged again
        a.store.change_passphrase(b"Summer2026")


@pytest.mark.parametrize("published", [b"laxchange demo - fictional parties only", b"correct horse battery staple",
                                       b"kettle marmalade lighthouse"])
def test_a_passphrase_printed_in_our_output_or_docs_is_refused_however_strong(published: bytes) -> None:
    """The demo prints `export LAXCHANGE_PASSPHRASE='...'` to paste; an `init` of a real home in that
    shell took it silently. Our docs' example and the famous one are known to everyone too."""
    with pytest.raises(UsageError) as exc:
        check_new_passphrase(published, source="LAXCHANGE_PASSPHRASE, set in this environment")
    assert exc.value.code == "passphrase.weak" and "known to everyone" in exc.value.message
    assert "read from LAXCHANGE_PASSPHRASE" in exc.value.message and "unset LAXCHANGE_PASSPHRASE" in (
        exc.value.hint or "")


def test_the_refusal_names_where_the_passphrase_was_read(tmp_path: Path) -> None:
    from laxchange.cli import main

    good = tmp_path / "good"
    good.write_text(PASSPHRASE.decode() + "\n")
    good.chmod(0o600)
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "init", "--party", "LA:919", "--name",
                                  "Example Council", "--kdf-work-factor", "10"],
                           env={"LAXCHANGE_PASSPHRASE": "Summer2026", "LAXCHANGE_PASSPHRASE_FILE": str(good)})
    assert r.exit_code == 2, r.output
    assert "(read from LAXCHANGE_PASSPHRASE, set in this environment (it wins over LAXCHANGE_PASSPHRASE_FILE" \
        in r.stderr
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "init", "--party", "LA:919", "--name",
                                  "Example Council", "--kdf-work-factor", "10"],
                           env={"LAXCHANGE_PASSPHRASE": "", "LAXCHANGE_PASSPHRASE_FILE": str(good)})
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "keys", "passphrase", "--kdf-work-factor", "10"],
                           env={"LAXCHANGE_PASSPHRASE": "", "LAXCHANGE_PASSPHRASE_FILE": str(good),
                                "LAXCHANGE_NEW_PASSPHRASE": "Summer2026"})
    assert r.exit_code == 2 and "(read from LAXCHANGE_NEW_PASSPHRASE, set in this environment)" in r.stderr
