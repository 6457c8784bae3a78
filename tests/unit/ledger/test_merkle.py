"""The RFC 6962 Merkle tree against an independent implementation's published vectors, and properties.

Vectors: transparency-dev/merkle (the Go library Certificate Transparency and Trillian use),
proof/verify_test.go at commit 02194e9afb6c1d95b5381350007963aa70fff472 (`leaves`, `roots`,
`inclusionProofs`, `consistencyProofs`; their leaf numbers are 1-based). Only the values are
copied here.
"""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from laxchange.ledger import merkle


def h(text: str) -> bytes:
    return bytes.fromhex(text)


LEAVES = [h(""), h("00"), h("10"), h("2021"), h("3031"), h("40414243"), h("5051525354555657"),
          h("606162636465666768696a6b6c6d6e6f")]
#: ROOTS[i] is the tree head of the first i + 1 leaves
ROOTS = [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
         h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
         h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
         h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
         h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
         h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
         h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
         h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
EMPTY = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
#: (leaf number, 1-based; tree size; audit path)
INCLUSION = [
    (1, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (3, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (2, 5, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
]
#: (old size, new size, proof)
CONSISTENCY = [
    (1, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]

HASHED = [merkle.leaf_hash(d) for d in LEAVES]


def test_empty_tree_head_is_the_hash_of_nothing() -> None:
    assert merkle.root([]) == EMPTY == merkle.EMPTY_ROOT


def test_tree_heads_match_the_published_roots() -> None:
    for n in range(1, len(LEAVES) + 1):
        assert merkle.root(HASHED[:n]) == ROOTS[n - 1], n


def test_prefix_roots_in_one_pass_are_the_tree_heads() -> None:
    assert merkle.prefix_roots(HASHED, range(len(HASHED) + 1)) == {0: EMPTY, **{n: ROOTS[n - 1] for n in range(1, 9)}}
    leaves = _leaves(70)
    assert merkle.prefix_roots(leaves, [70, 33, 1, 33]) == {n: merkle.root(leaves[:n]) for n in (1, 33, 70)}
    try:
        merkle.prefix_roots(leaves, [71])
    except ValueError as e:
        assert "within" in str(e)
    else:
        raise AssertionError("no error")


def test_inclusion_proofs_match_and_verify() -> None:
    for leaf, size, path in INCLUSION:
        assert merkle.inclusion_proof(HASHED[:size], leaf - 1) == path
        assert merkle.verify_inclusion(leaf - 1, size, HASHED[leaf - 1], path, ROOTS[size - 1])


def test_consistency_proofs_match_and_verify() -> None:
    for old, new, path in CONSISTENCY:
        assert merkle.consistency_proof(HASHED[:new], old) == path
        assert merkle.verify_consistency(old, new, path, ROOTS[old - 1], ROOTS[new - 1])


def test_published_proofs_fail_when_altered() -> None:
    for leaf, size, path in INCLUSION:
        i, r = leaf - 1, ROOTS[size - 1]
        assert not merkle.verify_inclusion(i, size, merkle.leaf_hash(b"WrongLeaf"), path, r)
        assert not merkle.verify_inclusion(i, size * 2, HASHED[i], path, r)
        assert not merkle.verify_inclusion(i, size, HASHED[i], [*path, r], r)
        assert not merkle.verify_inclusion(i, size, HASHED[i], path, EMPTY)
        if i + 1 < size:
            assert not merkle.verify_inclusion(i + 1, size, HASHED[i], path, r)
    for old, new, path in CONSISTENCY:
        r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
        assert not merkle.verify_consistency(old, new, [], r1, r2)
        assert not merkle.verify_consistency(old, new, path[:-1], r1, r2)
        assert not merkle.verify_consistency(old, new, path, r2, r1)
        assert not merkle.verify_consistency(old - 1, new, path, r1, r2) or old == 1
        assert not merkle.verify_consistency(old, new * 2, path, r1, r2)


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(n)]


@given(st.integers(1, 70), st.data())
def test_every_inclusion_proof_verifies_and_a_flipped_bit_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    head = merkle.root(leaves)
    i = data.draw(st.integers(0, n - 1))
    path = merkle.inclusion_proof(leaves, i)
    assert merkle.verify_inclusion(i, n, leaves[i], path, head)
    if path:
        j = data.draw(st.integers(0, len(path) - 1))
        bad = [*path]
        bad[j] = bytes([bad[j][0] ^ 8]) + bad[j][1:]
        assert not merkle.verify_inclusion(i, n, leaves[i], bad, head)
        assert not merkle.verify_inclusion(i, n, leaves[i], path[:-1], head)
    other = data.draw(st.integers(0, n - 1))
    if other != i:
        assert not merkle.verify_inclusion(other, n, leaves[i], path, head)


@given(st.integers(1, 70), st.data())
def test_every_consistency_proof_verifies_and_an_altered_one_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(0, n))
    path = merkle.consistency_proof(leaves, m)
    old, new = merkle.root(leaves[:m]), merkle.root(leaves)
    assert merkle.verify_consistency(m, n, path, old, new)
    if path:
        j = data.draw(st.integers(0, len(path) - 1))
        bad = [*path]
        bad[j] = bytes([bad[j][0] ^ 16]) + bad[j][1:]
        assert not merkle.verify_consistency(m, n, bad, old, new)
    if 0 < m < n:
        # a log rewritten after the old head: the old head is no prefix of the new tree
        rewritten = [*leaves[: m - 1], merkle.leaf_hash(b"rewritten"), *leaves[m:]]
        assert not merkle.verify_consistency(m, n, merkle.consistency_proof(rewritten, m), old,
                                             merkle.root(rewritten))


def test_bad_indexes_are_refused() -> None:
    for bad in (-1, 3):
        try:
            merkle.inclusion_proof(HASHED[:3], bad)
        except ValueError as e:
            assert "outside" in str(e)
        else:
            raise AssertionError("no error")
    assert not merkle.verify_inclusion(0, 0, HASHED[0], [], EMPTY)


def test_a_frontier_gives_every_prefix_head_and_refuses_what_is_no_tree() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(40)]
    frontier: merkle.Frontier = []
    for n in range(41):
        assert merkle.frontier_size(frontier) == n and merkle.frontier_root(frontier) == merkle.root(leaves[:n])
        assert len(frontier) == bin(n).count("1")
        if n < 40:
            merkle.push(frontier, leaves[n])
    h = leaves[0]
    for bad in ([(0, h), (1, h)], [(2, h), (2, h)], [(-1, h)], [(3, b"short")]):
        assert merkle.frontier_size(bad) is None, bad


def test_frontier_size_refuses_a_height_no_log_reaches_without_computing_it() -> None:
    """A kept tree state (checkpoints/own/tree.json) read back with an absurd height must be
    refused, not turned into a number of 2**height bits (a height of 10**12 was a MemoryError
    that stopped every checkpoint until the file was removed)."""
    h = merkle.leaf_hash(b"x")
    assert merkle.frontier_size([(62, h)]) == 2**62
    assert merkle.frontier_size([(10**12, h)]) is None
    assert merkle.frontier_size([(64, h)]) is None
