"""Signed notes and tlog checkpoints against the published examples.

Vectors: the signed note of golang.org/x/mod/sumdb/note's package documentation (note.go: the
PeterNeumann key, its private key string and the note it signs), an independent implementation
of c2sp.org/signed-note; and the example checkpoint body of c2sp.org/tlog-checkpoint. Only the
values are copied here.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from laxchange import dsse
from laxchange.ledger import checkpoint as cpt
from laxchange.ledger import merkle

GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (GO_TEXT + "\n\u2014 PeterNeumann "
           "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
C2SP_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def _go_key() -> tuple[dsse.Ed25519Signer, bytes]:
    seed = base64.b64decode(GO_SIGNER.split("+", 4)[4])
    assert seed[0] == 1  # the Ed25519 type byte, then the 32-byte seed
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed[1:])
    return dsse.Ed25519Signer("go", key), key.public_key().public_bytes_raw()


def test_we_sign_the_published_note_byte_for_byte() -> None:
    signer, public = _go_key()
    assert cpt.key_id("PeterNeumann", public).hex() == "c74f20a3"
    assert cpt.verifier_key("PeterNeumann", public) == GO_VERIFIER
    assert cpt.sign_note(GO_TEXT, "PeterNeumann", signer, public) == GO_NOTE


def test_the_published_note_verifies_and_an_altered_one_does_not() -> None:
    _, public = _go_key()
    assert cpt.open_note(cpt.parse_note(GO_NOTE), "PeterNeumann", [public]) == GO_TEXT
    altered = GO_NOTE.replace("answer", "ANSWER")
    with pytest.raises(cpt.CheckpointUnverified) as e:
        cpt.open_note(cpt.parse_note(altered), "PeterNeumann", [public])
    assert e.value.code == "checkpoint.bad-signature" and e.value.exit_code == 3
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(cpt.CheckpointUnverified, match="no signature by a key"):
        cpt.open_note(cpt.parse_note(GO_NOTE), "PeterNeumann", [other])  # an unknown key is ignored


def test_the_published_checkpoint_body_parses() -> None:
    cp = cpt.parse_checkpoint(C2SP_TEXT)
    assert (cp.origin, cp.size, len(cp.root)) == ("example.com/behind-the-sofa", 20852163, 32)
    assert cp.text() == C2SP_TEXT


@pytest.mark.parametrize(("text", "why"), [
    ("origin\n012\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
    ("origin\n12\n" + base64.b64encode(bytes(31)).decode() + "\n", "32 bytes"),
    ("origin\n12\n", "three"),
])
def test_bad_checkpoint_bodies_are_refused(text: str, why: str) -> None:
    with pytest.raises(cpt.CheckpointMalformed, match=why):
        cpt.parse_checkpoint(text)


@pytest.mark.parametrize(("note", "why"), [
    (GO_TEXT + "\u2014 PeterNeumann AAAA\n", "blank line"),
    (GO_NOTE.replace("\n", "\r\n"), "control"),
    (GO_TEXT + "\n- PeterNeumann x08go/ZJkuBS9U=\n", "signature line"),
    (b"\xff\xfe\n\n", "UTF-8"),
])
def test_malformed_notes_are_refused(note: str | bytes, why: str) -> None:
    with pytest.raises(cpt.CheckpointMalformed, match=why) as e:
        cpt.parse_note(note)
    assert e.value.code == "checkpoint.malformed"


def test_a_checkpoint_of_another_log_is_refused() -> None:
    signer, public = _go_key()
    cp = cpt.Checkpoint(cpt.origin_for("LA:919"), 0, merkle.EMPTY_ROOT)
    note = cpt.sign_note(cp.text(), cp.origin, signer, public)
    assert cpt.read_checkpoint(note, [public], "LA:919") == cp
    with pytest.raises(cpt.CheckpointUnverified) as e:
        cpt.read_checkpoint(note, [public], "LA:920")
    assert e.value.code == "checkpoint.wrong-origin"


def test_the_store_keeps_each_checkpoint_once_and_never_replaces_one(tmp_path: Path) -> None:
    store = cpt.CheckpointStore(tmp_path / "own")
    first = store.add("one\n", 1)
    assert store.add("one\n", 1) == first, "the same note again is not kept twice"
    second = store.add("two\n", 2)
    assert [p.name for p in store.paths()] == ["000001-1.note", "000002-2.note"]
    assert first.read_text() == "one\n" and second.read_text() == "two\n"
    assert first.stat().st_mode & 0o777 == 0o600


def test_a_fork_is_found_among_many_kept_checkpoints_reading_only_those_of_its_size(tmp_path: Path) -> None:
    """`fork_of` reads only the kept files named for the size it checks (one a night for years
    would otherwise be read for every receipt), and finds the same fork reading them all would."""
    signer, public = _go_key()
    store = cpt.CheckpointStore(tmp_path / "partner")

    def note(size: int, root: bytes) -> tuple[str, cpt.Checkpoint]:
        cp = cpt.Checkpoint(cpt.origin_for("URN:100001"), size, root)
        return cpt.sign_note(cp.text(), cp.origin, signer, public), cp

    roots = {n: merkle.leaf_hash(str(n).encode()) for n in range(1, 41)}
    for size in range(1, 41):
        text, cp = note(size, roots[size])
        assert store.fork_of(cp) is None
        store.add(text, cp.size)
    assert [p.name for p in store.paths(size=17)] == ["000017-17.note"]
    assert len(store.paths()) == 40 and store.paths(size=99) == []
    assert store.fork_of(note(17, roots[17])[1]) is None, "the same head again is no fork"
    other_text, other = note(17, merkle.leaf_hash(b"rewritten"))
    assert store.fork_of(other) == "000017-17.note"
    store.add(other_text, other.size)
    assert [p.name for p in store.paths(size=17)] == ["000017-17.note", "000041-17.note"]
    assert store.fork_of(other) == "000017-17.note", "the first kept of that size is the earlier one"
    assert store.fork_of(note(18, merkle.leaf_hash(b"rewritten"))[1]) == "000018-18.note"
