"""Pure rules of the transport layer: URLs, names, fingerprints, retry timing, parallel partners."""

from __future__ import annotations

import random
import threading
import time
import unicodedata
from pathlib import Path

import paramiko
import pytest

from laxchange.errors import ConfigError, TransientTransportError, TransportError, UsageError
from laxchange.transport import (
    Endpoint,
    Listing,
    RetryingTransport,
    RetryPolicy,
    Runner,
    SftpTransport,
    StaticEndpoints,
    fingerprint,
    name_problem,
    parse_url,
    send,
)
from tests.support import pyast
from tests.support.sshd import fingerprint_of, keygen


def test_parse_urls() -> None:
    u = parse_url("sftp://la919@sftp.example.org:2200/drop/in")
    assert (u.scheme, u.user, u.host, u.port, u.path) == ("sftp", "la919", "sftp.example.org", 2200, "/drop/in")
    assert parse_url("sftp://a@h").port == 22
    assert parse_url("file:///srv/drop").path == "/srv/drop"
    for bad in ("http://h/x", "sftp://h/x", "file://host/x", "sftp://a@h:99999/x", "sftp://a:pw@h/x"):
        with pytest.raises(UsageError):
            parse_url(bad)


@pytest.mark.parametrize("url,part", [
    ("sftp://user@127.0.0.1:22/../../", "'..'"),
    ("sftp://u@h:22/inbox/../../etc", "'..'"),
    ("sftp://u@h:22/%2e%2e/x", "'..'"),
    ("sftp://u@h:22/./inbox", "'.'"),
    ("sftp://u@h:22/~/../x", "'..'"),
    ("sftp://u@h:22/drop//in", "empty segment"),
    ("sftp://u@h:22//in", "empty segment"),
    ("file:///srv/../etc", "'..'"),
    ("file:///srv//drop", "empty segment"),
    ("file:srv/drop", "absolute"),
])
def test_parse_url_refuses_dot_and_empty_segments(url: str, part: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_url(url)
    assert exc.value.code == "url.invalid" and part in exc.value.message, exc.value.message
    assert exc.value.hint


def test_parse_url_keeps_the_forms_in_use() -> None:
    assert parse_url("sftp://slug@127.0.0.1:2022/slug").path == "/slug"
    assert parse_url("sftp://u@h:22/~/inbox").path == "inbox"
    assert parse_url("sftp://u@h:22/~/").path == "."
    assert parse_url("sftp://u@h:22/inbox/").path == "/inbox"
    assert parse_url("sftp://u@h:22/").path == "/"
    assert parse_url("sftp://a@h").path == "."
    assert parse_url("file:///srv/drop/").path == "/srv/drop"


@pytest.mark.parametrize("name,ok", [
    ("pkg-01HXYZ.lax", True), ("a..b", False), ("..", False), ("../x", False), ("a/b", False), ("a\\b", False),
    (".hidden", False), ("x\x00", False), ("x\u202e", False), ("x" * 256, False), ("", False), ("é.lax", True),
])
def test_name_rules(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) is ok


def test_name_rules_control_characters_every_code_point() -> None:
    """The ASCII fast path and the per-character check agree with Unicode's categories for every character."""
    for cp in range(0x110000):
        c = chr(cp)
        if c in "/\\.":
            continue
        control = cp < 32 or cp == 127 or unicodedata.category(c) in ("Cc", "Cf", "Cs")
        assert (name_problem(f"a{c}b") == "contains control or format characters") is control, hex(cp)


def test_fingerprint_matches_openssh(tmp_path: Path) -> None:
    path = keygen(tmp_path / "k")
    assert fingerprint(paramiko.Ed25519Key(filename=str(path))) == fingerprint_of(Path(str(path) + ".pub"))


class _Flaky:
    """Fails `fail` times with a transient error, then succeeds; counts connections."""

    opened = 0

    def __init__(self, fail: list[int], transient: bool = True) -> None:
        self.fail = fail
        self.transient = transient

    def __enter__(self) -> _Flaky:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        _Flaky.opened += 1

    def close(self) -> None:
        pass

    def list(self, folder: str = "") -> Listing:
        if self.fail[0] > 0:
            self.fail[0] -= 1
            raise (TransientTransportError if self.transient else TransportError)("dropped", code="ssh.connection-lost")
        return Listing()


def test_retry_backs_off_with_jitter_then_succeeds() -> None:
    fail = [2]
    sleeps: list[float] = []
    t = RetryingTransport(lambda: _Flaky(fail), RetryPolicy(base_delay=1.0), sleep=sleeps.append,  # type: ignore[arg-type,return-value]
                          rng=random.Random(7))
    assert t.list().files == []
    assert t.connects == 3
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_non_transient_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    t = RetryingTransport(lambda: _Flaky([5], transient=False), sleep=sleeps.append)  # type: ignore[arg-type,return-value]
    with pytest.raises(TransportError):
        t.list()
    assert sleeps == [] and t.connects == 1


def test_retries_stop_at_attempts_and_budget() -> None:
    sleeps: list[float] = []
    t = RetryingTransport(lambda: _Flaky([99]), RetryPolicy(attempts=3), sleep=sleeps.append)  # type: ignore[arg-type,return-value]
    with pytest.raises(TransportError) as e:
        t.list()
    assert len(sleeps) == 2 and e.value.details["attempts"] == 3
    clock = [0.0]

    def sleep(d: float) -> None:
        clock[0] += d + 10

    t = RetryingTransport(lambda: _Flaky([99]), RetryPolicy(attempts=100, budget=25), sleep=sleep,  # type: ignore[arg-type,return-value]
                          monotonic=lambda: clock[0])
    with pytest.raises(TransportError):
        t.list()
    assert clock[0] <= 25 + 8 + 10


def test_partners_run_in_parallel_with_a_bound() -> None:
    running = [0]
    peak = [0]
    lock = threading.Lock()

    def work(party: str) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        if party == "bad":
            raise ConfigError("no endpoint", code="endpoint.missing")
        return party

    runner = Runner(StaticEndpoints(), lambda e: None, max_parallel=3)  # type: ignore[arg-type,return-value]
    out = runner.each_party(["a", "b", "c", "d", "e", "bad"], work)
    assert peak[0] == 3
    assert out["a"] == "a" and isinstance(out["bad"], ConfigError)


def test_send_refuses_unsafe_local_names(tmp_path: Path) -> None:
    p = tmp_path / ".hidden.lax"
    p.write_bytes(b"x")
    runner = Runner(StaticEndpoints({"X": Endpoint("X", f"file://{tmp_path}")}), lambda e: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(TransportError):
        send(runner, "X", [p])


def test_public_api_is_exactly_all() -> None:
    import laxchange.transport as api

    public = {n for n in dir(api) if not n.startswith("_")} - {
        "base", "endpoints", "hostkeys", "identity", "local", "openssh", "ops", "parts", "retry", "server", "sftp"}
    assert public == set(api.__all__)


def test_every_transport_failure_carries_a_hint() -> None:
    """Issue 10, item 7: a dropped connection during collect printed no hint. Every
    TransportError / TransientTransportError built in laxchange/transport/ must say what to do."""
    import ast

    from tests.support.parties import REPO

    missing = []
    for path in sorted((REPO / "laxchange" / "transport").glob("*.py")):
        for node in ast.walk(pyast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("TransportError",
                                                                                  "TransientTransportError")
                    and not any(kw.arg == "hint" for kw in node.keywords)):
                missing.append(f"{path.name}:{node.lineno}")
    assert missing == [], f"add a hint= to: {missing}"


def test_authorized_keys_take_the_comment_laxchange_init_writes(tmp_path: Path) -> None:
    """A partner's .pub line (or the line on its card) says `laxchange-LA-919`: pasted as it is, it names LA:919."""
    from laxchange.transport.server import read_authorized_keys

    key = paramiko.Ed25519Key.from_private_key_file(str(keygen(tmp_path / "k", "x")))
    line = f"{key.get_name()} {key.get_base64()}"
    auth = tmp_path / "authorized_keys"
    auth.write_text(f"{line} laxchange-LA-919\n{line} URN:123456\n")
    assert [p for p, _k in read_authorized_keys(auth)] == ["LA:919", "URN:123456"]


@pytest.mark.parametrize(("url", "path", "ours"), [
    ("sftp://la@127.0.0.1:22", "./.p.lax.part-0123456789ab", True),  # the login's own folder
    ("sftp://la@127.0.0.1:22/~/", "./.p.lax.part-0123456789ab", True),
    ("sftp://la@127.0.0.1:22/drop", "/drop/.p.lax.part-0123456789ab", True),
    ("sftp://la@127.0.0.1:22/drop", "/drop/processed/.p.lax.part-0123456789ab", True),
    ("sftp://la@127.0.0.1:22/drop", "/drop/p.lax", False),  # a published file
    ("sftp://la@127.0.0.1:22/drop", "/drop/../etc/.p.lax.part-0123456789ab", False),
    ("sftp://la@127.0.0.1:22/drop", "/dropx/.p.lax.part-0123456789ab", False),
    ("sftp://la@127.0.0.1:22/drop", "/drop/.p.lax.part-0123", False),
    ("sftp://la@127.0.0.1:22", "/etc/.p.lax.part-0123456789ab", False),
])
def test_a_sweep_removes_only_temporary_names_under_the_endpoint(url: str, path: str, ours: bool) -> None:
    t = SftpTransport(Endpoint("LA:1", url), lambda: None)  # type: ignore[arg-type,return-value]
    assert t._is_our_part(path) is ours
    if ours:  # and a name the transport itself makes is one
        assert t._is_our_part(t._new_part("", "p.lax"))
