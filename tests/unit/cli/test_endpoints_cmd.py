"""Issue 10 item 16: `endpoints list` shows every partner's effective endpoint and where it comes from."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from laxchange.exchange import DirectoryEndpoints
from tests.support.parties import PASSPHRASE, make_party

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode(), "LAXCHANGE_PASSPHRASE_FILE": ""}
FPR = "SHA256:" + "A" * 43


def run(*args: str):  # type: ignore[no-untyped-def]
    from laxchange.cli import main

    return CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)


def _homes(tmp_path: Path):  # type: ignore[no-untyped-def]
    a = make_party(tmp_path, "LA:919", "Example Council", sftp_url="sftp://la919@127.0.0.1:2222/in",
                   host_key_fingerprints=[FPR])
    b = make_party(tmp_path, "URN:123456", "Example School", sftp_url="sftp://school@127.0.0.1:2200/drop",
                   host_key_fingerprints=[FPR])
    c = make_party(tmp_path, "LA:920", "Other Council")  # no SFTP endpoint on its card
    a.trust(b)
    a.trust(c)
    return a, b, c


def test_endpoints_list_shows_cards_overrides_and_our_own(tmp_path: Path) -> None:
    a, _, _ = _homes(tmp_path)
    r = run("--home", str(a.home.root), "--json", "endpoints", "list")
    assert r.exit_code == 0, r.output
    rows = {e["party"]: e for e in json.loads(r.stdout)["endpoints"]}
    assert rows["URN:123456"]["url"] == "sftp://school@127.0.0.1:2200/drop"
    assert rows["URN:123456"]["source"] == "card"
    assert rows["LA:919"]["source"] == "own" and rows["LA:919"]["url"] == "sftp://la919@127.0.0.1:2222/in"
    assert rows["LA:920"]["url"] is None and "no SFTP endpoint" in rows["LA:920"]["problem"]
    r = run("--home", str(a.home.root), "endpoints", "add", "URN:123456", "file:///tmp/school-drop")
    assert r.exit_code == 0, r.output
    r = run("--home", str(a.home.root), "endpoints", "list")
    assert r.exit_code == 0 and "no endpoints" not in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("URN:123456"))
    assert "file:///tmp/school-drop" in line and "config" in line
    assert DirectoryEndpoints(a.home).resolve("URN:123456").url == "file:///tmp/school-drop"


def test_endpoints_remove_drops_the_override_and_the_card_applies_again(tmp_path: Path) -> None:
    a, _, _ = _homes(tmp_path)
    home = str(a.home.root)
    assert run("--home", home, "endpoints", "add", "URN:123456", "file:///tmp/school-drop").exit_code == 0
    r = run("--home", home, "endpoints", "remove", "URN:123456")
    assert r.exit_code == 0, r.output
    assert "sftp://school@127.0.0.1:2200/drop" in r.stdout  # what is in effect now
    assert DirectoryEndpoints(a.home).resolve("URN:123456").url == "sftp://school@127.0.0.1:2200/drop"
    r = run("--home", home, "--json", "endpoints", "remove", "URN:123456")
    assert r.exit_code == 2
    data = json.loads(r.stdout)
    assert data["error"] == "endpoint.not-configured" and "card" in data["hint"]


def test_endpoints_list_says_which_ssh_client_each_sftp_endpoint_uses(tmp_path: Path) -> None:
    a, _, _ = _homes(tmp_path)
    r = run("--home", str(a.home.root), "endpoints", "add", "URN:123456", "sftp://school@127.0.0.1:2201/drop",
            "--host-key-fingerprint", FPR, "--backend", "openssh")
    assert r.exit_code == 0, r.output
    rows = {e["party"]: e for e in json.loads(run("--home", str(a.home.root), "--json", "endpoints", "list").stdout)
            ["endpoints"]}
    assert rows["URN:123456"]["backend"] == "openssh"
    assert rows["LA:919"]["backend"] == "paramiko"  # our own drop folder: the default
    assert "backend" not in rows["LA:920"]  # no endpoint at all
    text = run("--home", str(a.home.root), "endpoints", "list").stdout
    assert "[config override via openssh]" in text and "[our own drop folder (our card) via paramiko]" in text
    cfg = a.home.root / "config.json"
    cfg.write_text(json.dumps(json.loads(cfg.read_text()) | {"sftp_backend": "openssh"}))
    rows = {e["party"]: e for e in json.loads(run("--home", str(a.home.root), "--json", "endpoints", "list").stdout)
            ["endpoints"]}
    assert rows["LA:919"]["backend"] == "openssh"  # the home-wide default now


def test_endpoints_add_refuses_what_the_openssh_backend_would_refuse_at_connect_time(tmp_path: Path) -> None:
    """A loose ssh_config and a user name ssh_config could paste into a shell command were saved by
    `endpoints add` and refused only at the first connection, that night: now refused at once, with
    the codes connecting gives, and nothing saved."""
    a, _, _ = _homes(tmp_path)
    home = str(a.home.root)
    config = tmp_path / "ssh_config"
    config.write_text("RekeyLimit 1M\n")
    config.chmod(0o666)

    def add(url: str, *extra: str) -> dict[str, object]:
        r = run("--home", home, "--json", "endpoints", "add", "URN:123456", url, "--host-key-fingerprint", FPR,
                "--backend", "openssh", *extra)
        assert r.exit_code == 2, r.output
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    loose = add("sftp://school@127.0.0.1:2201/drop", "--ssh-config", str(config))
    assert loose["error"] == "endpoint.ssh-config-unsafe" and str(config) in str(loose["message"])
    shell = add("sftp://a%3Btouch%20x@127.0.0.1:2201/drop")
    assert shell["error"] == "url.invalid" and "user name" in str(shell["message"])
    assert not (a.home.root / "config.json").exists() or "2201" not in (a.home.root / "config.json").read_text()
    config.chmod(0o600)
    assert run("--home", home, "endpoints", "add", "URN:123456", "sftp://school@127.0.0.1:2201/drop",
               "--host-key-fingerprint", FPR, "--backend", "openssh", "--ssh-config", str(config)).exit_code == 0
    # paramiko passes no name to a shell: its endpoints are not held to ssh's rule
    assert run("--home", home, "endpoints", "add", "LA:920", "sftp://a%3Bb@127.0.0.1:2201/drop",
               "--host-key-fingerprint", FPR, "--backend", "paramiko").exit_code == 0
