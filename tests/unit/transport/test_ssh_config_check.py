"""An opted-in ssh_config and every file it Includes are held to ssh's owner-and-mode rule before ssh
starts (`check_ssh_endpoint`): ssh itself refuses a loose included file only when it connects, as
"Bad owner or permissions", which the nightly job would read as a partner that cannot be reached."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from laxchange.errors import TransportError, UsageError
from laxchange.transport import Endpoint, check_ssh_endpoint

FPR = "SHA256:" + "A" * 43


def _endpoint(config: Path) -> Endpoint:
    return Endpoint("LA:1", "sftp://u@127.0.0.1:2222/drop", (FPR,), backend="openssh", ssh_config=config)


def _file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _refusal(config: Path, error: type[TransportError] | type[UsageError] = TransportError) -> str:
    with pytest.raises(error) as e:
        check_ssh_endpoint(_endpoint(config), error=error)
    assert e.value.code == "endpoint.ssh-config-unsafe" and e.value.hint
    return e.value.message


@pytest.mark.parametrize("spelling", ["Include {}", "include={}", "  INCLUDE   {}  # theirs", 'Include "{}"'])
def test_a_loose_included_file_is_refused_and_named(tmp_path: Path, spelling: str) -> None:
    loose = _file(tmp_path / "shared.conf", "ProxyCommand nc %h %p\n", 0o666)
    config = _file(tmp_path / "ssh_config", "RekeyLimit 1M\n" + spelling.format(loose) + "\n")
    message = _refusal(config)
    assert str(loose) in message and str(config) in message and "666" in message
    loose.chmod(0o644)
    check_ssh_endpoint(_endpoint(config))  # fixed: accepted


def test_included_files_are_checked_through_wildcards_and_nesting(tmp_path: Path) -> None:
    d = tmp_path / "conf.d"
    d.mkdir()
    _file(d / "10-ok.conf", "RekeyLimit 1M\n")
    inner = _file(tmp_path / "inner.conf", "ServerAliveInterval 10\n", 0o620)
    _file(d / "20-nested.conf", f"Host partner\n  Include {inner}\n")
    config = _file(tmp_path / "ssh_config", f"Include {d}/*.conf {tmp_path}/nothing-matches-*.conf\n")
    message = _refusal(config)
    assert str(inner) in message and "20-nested.conf" in message
    inner.chmod(0o600)
    check_ssh_endpoint(_endpoint(config))


def test_ssh_refuses_the_same_loose_include_when_it_connects(tmp_path: Path) -> None:
    """The rule is ssh's own (readconf.c checks included files' permissions): we only say it sooner."""
    loose = _file(tmp_path / "shared.conf", "RekeyLimit 1M\n", 0o666)
    config = _file(tmp_path / "ssh_config", f"Include {loose}\n")
    r = subprocess.run(["ssh", "-F", str(config), "-G", "127.0.0.1"], capture_output=True, text=True, timeout=30,
                       check=False)
    assert r.returncode != 0 and "Bad owner or permissions" in r.stderr
    _refusal(config)


def test_an_include_loop_a_pipe_and_unexpandable_names_fail_closed(tmp_path: Path) -> None:
    loop = tmp_path / "loop.conf"
    _file(loop, f"Include {loop}\n")
    assert "nested more than 16" in _refusal(loop)
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo, 0o600)
    assert "not a regular file" in _refusal(_file(tmp_path / "a.conf", f"Include {fifo}\n"))  # never blocks
    assert "%-tokens" in _refusal(_file(tmp_path / "b.conf", "Include %d/.ssh/extra\n"))
    assert "%-tokens" in _refusal(_file(tmp_path / "c.conf", "Include ${CONF}\n"))
    assert "unbalanced" in _refusal(_file(tmp_path / "d.conf", 'Include "unclosed\n'))


def test_endpoints_add_gets_the_same_refusal_as_a_usage_error(tmp_path: Path) -> None:
    loose = _file(tmp_path / "shared.conf", "RekeyLimit 1M\n", 0o666)
    config = _file(tmp_path / "ssh_config", f"Include {loose}\n")
    assert str(loose) in _refusal(config, UsageError)
