"""One contract, three transports: local folder, embedded paramiko server, real OpenSSH sshd; the
SFTP ones through each SFTP backend (paramiko, the system's OpenSSH client)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from laxchange.errors import TransportError
from laxchange.transport import Transport
from laxchange.transport.base import BACKGROUND_BYTES, SINK_BATCH, GetItem, PutItem
from tests.support.sshd import ClientKey
from tests.support.transport_fixtures import open_transport


@pytest.fixture(params=["local", "embedded", "sshd", "embedded-openssh", "sshd-openssh"])
def remote(request: pytest.FixtureRequest, tmp_path: Path, client_key: ClientKey) -> Iterator[tuple[Transport, Path]]:
    """A transport on an empty remote folder, plus that folder's local path for inspection."""
    folder = tmp_path / "server" / "drop"
    folder.mkdir(parents=True)
    server = request.getfixturevalue("sshd") if request.param.startswith("sshd") else None
    with open_transport(request.param, folder, tmp_path, client_key.key, server) as t:
        yield t, folder


def _file(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / "local" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    return p


def test_put_list_get_roundtrip(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    t, folder = remote
    data = os.urandom(700_000)
    src = _file(tmp_path, "a.lax", data)
    seen: list[tuple[int, int]] = []
    rf = t.put(src, "a.lax", sha256=hashlib.sha256(data).hexdigest(), progress=lambda d, n: seen.append((d, n)))
    assert rf.size == len(data)
    assert seen[-1] == (len(data), len(data))
    assert sorted(os.listdir(folder)) == ["a.lax"]
    assert t.list().names() == ["a.lax"]
    dest = tmp_path / "in" / "a.lax"
    dest.parent.mkdir()
    assert t.get("a.lax", dest, sha256=hashlib.sha256(data).hexdigest()) == len(data)
    assert dest.read_bytes() == data
    assert os.listdir(dest.parent) == ["a.lax"]
    assert dest.stat().st_mode & 0o077 == 0


def test_put_again_is_idempotent_but_never_overwrites(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    t, folder = remote
    src = _file(tmp_path, "b.lax", b"one" * 1000)
    t.put(src, "b.lax")
    t.put(src, "b.lax")
    assert os.listdir(folder) == ["b.lax"]
    other = _file(tmp_path, "other", b"two" * 1000)
    with pytest.raises(TransportError) as e:
        t.put(other, "b.lax")
    assert e.value.code == "remote.exists" and not e.value.transient
    assert (folder / "b.lax").read_bytes() == b"one" * 1000


def test_move_to_processed_and_delete(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    t, folder = remote
    t.put(_file(tmp_path, "c.lax", b"c"), "c.lax")
    t.put(_file(tmp_path, "d.lax", b"d"), "d.lax")
    t.move("c.lax", "processed")
    t.move("c.lax", "processed")  # a retry after a lost reply finds it done
    assert (folder / "processed" / "c.lax").read_bytes() == b"c"
    assert t.list().names() == ["d.lax"]
    assert t.list("processed").names() == ["c.lax"]
    t.delete("d.lax")
    t.delete("d.lax")
    assert t.list().names() == []


def test_listing_hides_temporaries_and_refuses_symlinks(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    t, folder = remote
    (folder / ".x.lax.part-0011").write_bytes(b"partial")
    (folder / "sub").mkdir()
    secret = tmp_path / "secret"
    secret.write_text("outside")
    (folder / "link.lax").symlink_to(secret)
    (folder / "ok.lax").write_bytes(b"ok")
    listing = t.list()
    assert listing.names() == ["ok.lax"]
    assert listing.skipped == [("link.lax", "symbolic link")]
    dest = tmp_path / "l.lax"
    with pytest.raises(TransportError):
        t.get("link.lax", dest)
    assert not dest.exists()


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".hidden", "x\nlax", "", "a\\b"])
def test_bad_names_refused(remote: tuple[Transport, Path], tmp_path: Path, bad: str) -> None:
    t, folder = remote
    with pytest.raises(TransportError) as e:
        t.put(_file(tmp_path, "e.lax", b"e"), bad)
    assert e.value.code == "name.invalid"
    with pytest.raises(TransportError):
        t.get(bad, tmp_path / "out")
    assert os.listdir(folder) == []


def test_hash_mismatch_on_download_leaves_nothing(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    t, folder = remote
    (folder / "f.lax").write_bytes(b"tampered")
    dest_dir = tmp_path / "in"
    dest_dir.mkdir()
    with pytest.raises(TransportError) as e:
        t.get("f.lax", dest_dir / "f.lax", sha256=hashlib.sha256(b"original").hexdigest())
    assert e.value.code == "verify.hash"
    assert os.listdir(dest_dir) == []


def test_wrong_local_hash_is_not_delivered(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    t, folder = remote
    with pytest.raises(TransportError) as e:
        t.put(_file(tmp_path, "g.lax", b"g"), "g.lax", sha256="0" * 64)
    assert e.value.code == "verify.local-hash"
    assert [n for n in os.listdir(folder) if not n.startswith(".")] == []


def test_a_large_upload_is_checked_against_its_sha256_over_every_byte(remote: tuple[Transport, Path],
                                                                      tmp_path: Path) -> None:
    """Several WRITEs' worth: the digest (taken beside the writes) covers the last chunk too."""
    t, folder = remote
    data = os.urandom(3 * 255 * 1024 + 17)
    local = _file(tmp_path, "big.lax", data)
    last_byte_differs = hashlib.sha256(data[:-1] + bytes([data[-1] ^ 1])).hexdigest()
    with pytest.raises(TransportError) as e:
        t.put(local, "big.lax", sha256=last_byte_differs)
    assert e.value.code == "verify.local-hash"
    assert [n for n in os.listdir(folder) if not n.startswith(".")] == []
    assert t.put(local, "big.lax", sha256=hashlib.sha256(data).hexdigest().upper()).size == len(data)
    assert (folder / "big.lax").read_bytes() == data


def test_a_large_download_is_checked_against_its_sha256_over_every_byte(remote: tuple[Transport, Path],
                                                                        tmp_path: Path) -> None:
    """Over `BACKGROUND_BYTES`: hashed and written back on threads beside the reads, and still a
    wrong digest (last byte) leaves nothing, the right one gives every byte, and with no digest
    an existing different file under the name is never overwritten."""
    t, folder = remote
    data = os.urandom(BACKGROUND_BYTES + 3 * 255 * 1024 + 17)
    (folder / "big.lax").write_bytes(data)
    inbox = tmp_path / "in"
    inbox.mkdir()
    last_byte_differs = hashlib.sha256(data[:-1] + bytes([data[-1] ^ 1])).hexdigest()
    with pytest.raises(TransportError) as e:
        t.get("big.lax", inbox / "big.lax", sha256=last_byte_differs)
    assert e.value.code == "verify.hash"
    assert os.listdir(inbox) == []
    assert t.get("big.lax", inbox / "big.lax", sha256=hashlib.sha256(data).hexdigest()) == len(data)
    assert (inbox / "big.lax").read_bytes() == data
    assert t.get("big.lax", inbox / "big.lax") == len(data)  # the same bytes again: done
    different = data[:-1] + bytes([data[-1] ^ 1])  # never equal to data (b"x" was, one run in 256)
    (inbox / "other.lax").write_bytes(different)
    with pytest.raises(TransportError) as e:
        t.get("big.lax", inbox / "other.lax")
    assert e.value.code == "local.exists"
    assert (inbox / "other.lax").read_bytes() == different
    assert sorted(os.listdir(inbox)) == ["big.lax", "other.lax"]


def test_download_again_is_idempotent_and_never_clobbers(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    t, folder = remote
    (folder / "h.lax").write_bytes(b"same")
    inbox = tmp_path / "in"
    inbox.mkdir()
    t.get("h.lax", inbox / "h.lax")
    t.get("h.lax", inbox / "h.lax")  # a crash before the remote move leads to this on the next run
    (folder / "h.lax").write_bytes(b"different")
    with pytest.raises(TransportError) as e:
        t.get("h.lax", inbox / "h.lax")
    assert e.value.code == "local.exists"
    assert (inbox / "h.lax").read_bytes() == b"same" and os.listdir(inbox) == ["h.lax"]


def test_move_onto_an_identical_processed_copy_is_done(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    """issue 9 #7: a file delivered again after it was collected, with the same bytes, is done, not an error."""
    t, _ = remote
    t.put(_file(tmp_path, "i.lax", b"same bytes"), "i.lax")
    t.move("i.lax", "processed")
    t.put(_file(tmp_path, "i.lax", b"same bytes"), "i.lax")
    t.move("i.lax", "processed")
    assert t.list().names() == []
    assert t.list("processed").names() == ["i.lax"]


def test_move_onto_a_different_processed_file_keeps_both(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    """A second, different `pep.lax` never blocks collection: it is kept beside the first under a name
    derived from its own SHA-256 (the same name on a retry), and the first is never overwritten."""
    t, folder = remote
    t.put(_file(tmp_path, "pep.lax", b"first"), "pep.lax")
    t.move("pep.lax", "processed")
    t.put(_file(tmp_path, "pep2", b"second"), "pep.lax")
    t.move("pep.lax", "processed")
    t.move("pep.lax", "processed")  # a retry after a lost reply
    aside = f"pep-{hashlib.sha256(b'second').hexdigest()[:12]}.lax"
    assert t.list().names() == []
    assert sorted(t.list("processed").names()) == sorted(["pep.lax", aside])
    assert (folder / "processed" / "pep.lax").read_bytes() == b"first"
    assert (folder / "processed" / aside).read_bytes() == b"second"


def test_probe_writes_and_removes_a_hidden_file_and_reports_its_mtime(remote: tuple[Transport, Path],
                                                                      tmp_path: Path) -> None:
    t, folder = remote
    t.put(_file(tmp_path, "e.lax", b"e"), "e.lax")
    before = time.time()
    mtime = t.probe()
    assert mtime is not None and before - 5 <= mtime <= time.time() + 5  # the server's clock is ours here
    assert os.listdir(folder) == ["e.lax"]  # the probe is gone, nothing else touched
    (folder / "processed").mkdir()
    assert t.probe("processed") is not None
    assert os.listdir(folder / "processed") == []


def test_probe_of_a_missing_folder_is_a_clear_error(remote: tuple[Transport, Path]) -> None:
    t, _ = remote
    with pytest.raises(TransportError) as e:
        t.probe("nowhere")
    assert e.value.code == "remote.missing" and not e.value.transient


def test_put_many_delivers_each_and_reports_each(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    """Overlapped or not, each file gets what `put` would give: a clash with different bytes is
    that file's error, the same bytes again is delivered, and the rest go through; more files than
    the local folder fsyncs together (`PUT_GROUP`), so a group boundary is crossed, errors and all."""
    t, folder = remote
    t.put(_file(tmp_path, "taken.lax", b"first"), "taken.lax")
    t.put(_file(tmp_path, "same.lax", b"same"), "same.lax")
    items = [PutItem(_file(tmp_path, f"n{i}.lax", os.urandom(100 + i)), f"n{i}.lax") for i in range(40)]
    items.insert(33, PutItem(_file(tmp_path, "clash2", b"third"), "taken.lax"))  # in the second group
    items.insert(3, PutItem(_file(tmp_path, "clash", b"second"), "taken.lax"))
    items.insert(7, PutItem(tmp_path / "local" / "same.lax", "same.lax"))
    items.insert(9, PutItem(_file(tmp_path, "bad", b"x"), "bad.lax", sha256="0" * 64))
    items.append(PutItem(_file(tmp_path, "big.lax", os.urandom(1_500_000)), "big.lax"))
    out = t.put_many(items)
    assert len(out) == len(items)
    for it, res in zip(items, out, strict=True):
        if it.name == "taken.lax":
            assert isinstance(res, TransportError) and res.code == "remote.exists"
        elif it.name == "bad.lax":
            assert isinstance(res, TransportError) and res.code == "verify.local-hash"
        else:
            assert not isinstance(res, TransportError), res
            assert (folder / it.name).read_bytes() == it.local.read_bytes()
    assert (folder / "taken.lax").read_bytes() == b"first"
    assert sorted(os.listdir(folder)) == sorted({it.name for it in items} - {"bad.lax"})


def test_get_many_fetches_each_and_reports_each(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    """Overlapped or not, each download gets what `get` would give: a link or a missing file is
    that file's error, a hash mismatch leaves nothing, and the rest arrive whole; more files than are
    made durable together (`SINK_BATCH`), so every batch boundary is crossed."""
    t, folder = remote
    want = {f"g{i:03d}.lax": os.urandom(50 + 397 * i) for i in range(SINK_BATCH + 10)}
    want["big.lax"] = os.urandom(700_000)
    want["empty.lax"] = b""
    for name, data in want.items():
        (folder / name).write_bytes(data)
    (folder / "bad.lax").write_bytes(b"tampered")
    secret = tmp_path / "secret"
    secret.write_text("outside")
    (folder / "link.lax").symlink_to(secret)
    inbox = tmp_path / "in"
    inbox.mkdir()
    items = [GetItem(n, inbox / n, hashlib.sha256(d).hexdigest()) for n, d in want.items()]
    items.insert(2, GetItem("link.lax", inbox / "link.lax"))
    items.insert(5, GetItem("gone.lax", inbox / "gone.lax"))
    items.insert(8, GetItem("bad.lax", inbox / "bad.lax", hashlib.sha256(b"original").hexdigest()))
    out = t.get_many(items)
    assert len(out) == len(items)
    for it, res in zip(items, out, strict=True):
        if it.name in ("link.lax", "gone.lax", "bad.lax"):
            assert isinstance(res, TransportError), it.name
        else:
            assert res == len(want[it.name]), (it.name, res)
    assert [r.code for r in out if isinstance(r, TransportError)][2] == "verify.hash"
    assert sorted(os.listdir(inbox)) == sorted(want)
    assert all((inbox / n).read_bytes() == d for n, d in want.items())


def test_move_many_moves_each_and_reports_each(remote: tuple[Transport, Path], tmp_path: Path) -> None:
    """Overlapped or not, each move gets what `move` would give: the collision cases (same bytes
    there, different bytes there, the aside name taken by other bytes), a move already done, a
    missing file and a bad name are each that file's own outcome, and the rest go ahead."""
    t, folder = remote
    processed = folder / "processed"
    processed.mkdir()
    plain = {f"m{i:02d}.lax": os.urandom(100 + i) for i in range(20)}
    for name, data in plain.items():
        (folder / name).write_bytes(data)
    (folder / "same.lax").write_bytes(b"same")
    (processed / "same.lax").write_bytes(b"same")
    (folder / "diff.lax").write_bytes(b"second")
    (processed / "diff.lax").write_bytes(b"first")
    (folder / "stuck.lax").write_bytes(b"third")
    (processed / "stuck.lax").write_bytes(b"first")
    stuck_aside = f"stuck-{hashlib.sha256(b'third').hexdigest()[:12]}.lax"
    (processed / stuck_aside).write_bytes(b"someone else's")
    (processed / "done.lax").write_bytes(b"moved before")
    names = list(plain)
    for at, name in ((2, "same.lax"), (5, "diff.lax"), (8, "stuck.lax"), (11, "done.lax"), (14, "gone.lax"),
                     (17, "../x")):
        names.insert(at, name)
    out = t.move_many(names, "processed")
    assert len(out) == len(names)
    errors = {n: r.code for n, r in zip(names, out, strict=True) if r is not None}
    assert errors == {"stuck.lax": "remote.exists", "gone.lax": "remote.missing", "../x": "name.invalid"}
    diff_aside = f"diff-{hashlib.sha256(b'second').hexdigest()[:12]}.lax"
    assert sorted(os.listdir(folder)) == ["processed", "stuck.lax"]
    assert sorted(os.listdir(processed)) == sorted([*plain, "same.lax", "diff.lax", diff_aside, "stuck.lax",
                                                    stuck_aside, "done.lax"])
    assert all((processed / n).read_bytes() == d for n, d in plain.items())
    assert (processed / "diff.lax").read_bytes() == b"first" and (processed / diff_aside).read_bytes() == b"second"
    assert (processed / stuck_aside).read_bytes() == b"someone else's"
    assert (folder / "stuck.lax").read_bytes() == b"third"
    # a repeat (a retry after a lost reply) finds every move done, and still refuses the one it could not make
    again = t.move_many(names, "processed")
    assert {n: r.code for n, r in zip(names, again, strict=True) if r is not None} == {
        "stuck.lax": "remote.exists", "gone.lax": "remote.missing", "../x": "name.invalid"}


def test_move_many_makes_the_target_folder_once_and_keeps_using_it(remote: tuple[Transport, Path]) -> None:
    t, folder = remote
    (folder / "LA_919").mkdir()
    for i in range(6):
        (folder / "LA_919" / f"p{i}.lax").write_bytes(b"%d" % i)
    assert t.move_many(["p0.lax", "p1.lax", "p2.lax"], "processed", folder="LA_919") == [None] * 3
    assert t.move_many(["p3.lax", "p4.lax"], "processed", folder="LA_919") == [None] * 2
    assert sorted(os.listdir(folder / "LA_919" / "processed")) == [f"p{i}.lax" for i in range(5)]
    assert sorted(os.listdir(folder / "LA_919")) == ["p5.lax", "processed"]
    assert not (folder / "processed").exists()
    assert t.move_many([], "processed") == []
    # the target removed under a connection that has used it: made again, nothing lost
    for n in os.listdir(folder / "LA_919" / "processed"):
        (folder / "LA_919" / "processed" / n).unlink()
    (folder / "LA_919" / "processed").rmdir()
    assert t.move_many(["p5.lax"], "processed", folder="LA_919") == [None]
    assert os.listdir(folder / "LA_919" / "processed") == ["p5.lax"]


def test_move_many_into_a_bad_folder_name_is_each_files_error(remote: tuple[Transport, Path]) -> None:
    t, folder = remote
    (folder / "a.lax").write_bytes(b"a")
    out = t.move_many(["a.lax"], "../up")
    assert [r.code if r else None for r in out] == ["name.invalid"]
    assert os.listdir(folder) == ["a.lax"]


def test_delete_many_removes_each_and_reports_each(remote: tuple[Transport, Path]) -> None:
    t, folder = remote
    for i in range(12):
        (folder / f"d{i}.lax").write_bytes(b"x")
    (folder / "keep.lax").write_bytes(b"k")
    names = [f"d{i}.lax" for i in range(12)]
    names.insert(4, "gone.lax")  # already gone: not an error (a retry after a lost reply)
    names.insert(7, "a/b")
    out = t.delete_many(names)
    assert [(n, r.code) for n, r in zip(names, out, strict=True) if r is not None] == [("a/b", "name.invalid")]
    assert os.listdir(folder) == ["keep.lax"]


def test_a_name_twice_in_one_batch_is_moved_once_and_each_reported_done(remote: tuple[Transport, Path]) -> None:
    """Both requests of a name given twice are in flight together: the second finds the first's
    move done (the source gone, the target there), as a second collector of the folder would."""
    t, folder = remote
    (folder / "a.lax").write_bytes(b"a")
    (folder / "b.lax").write_bytes(b"b")
    assert t.move_many(["a.lax", "b.lax", "a.lax"], "processed") == [None, None, None]
    assert sorted(os.listdir(folder / "processed")) == ["a.lax", "b.lax"]
    assert (folder / "processed" / "a.lax").read_bytes() == b"a"
    assert os.listdir(folder) == ["processed"]
    (folder / "c.lax").write_bytes(b"c")
    assert t.delete_many(["c.lax", "c.lax"]) == [None, None]
    assert os.listdir(folder) == ["processed"]
