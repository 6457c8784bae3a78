"""RFC 6962 (RFC 9162 §2.1) Merkle tree over the audit log: tree head, inclusion and consistency proofs.

A hash chain proves the order of the entries but not that none were cut off the end; a Merkle
tree head signed into a checkpoint and held by a partner does (docs/ledger.md). Leaf i is the
i-th audit entry (seq order) and its leaf *data* is the entry's chain hash as 32 raw bytes, so
a leaf commits to the entry's time, event, data and predecessor at once.

Hashes: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), the empty tree is
SHA-256 of nothing. The functions work on leaf hashes (already prefixed and hashed), as a
verifier receives them, and are iterative where a log might be long.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 6962 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of these leaf hashes (MTH in RFC 6962), computed bottom-up in O(n)."""
    if not leaves:
        return EMPTY_ROOT
    # Pair neighbours level by level; an odd node at the end is carried up unchanged. This gives
    # RFC 6962's left-full shape, since the split point is always a power of two.
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


#: The perfect subtrees a tree of n leaves splits into, largest (leftmost) first, as (height, hash):
#: one per set bit of n. All a tree's later heads need of its past (RFC 9162's "compact range").
Frontier = list[tuple[int, bytes]]

#: The tallest perfect subtree a frontier may hold: 2**62 leaves, far beyond any audit log.
MAX_HEIGHT = 62


def push(frontier: Frontier, leaf: bytes) -> None:
    """Add one leaf hash to the right of the tree `frontier` describes (in place): O(log n)."""
    height, h = 0, leaf
    while frontier and frontier[-1][0] == height:
        h = node_hash(frontier.pop()[1], h)
        height += 1
    frontier.append((height, h))


def frontier_root(frontier: Frontier) -> bytes:
    """The tree head of the tree `frontier` describes (its subtrees folded from the right)."""
    if not frontier:
        return EMPTY_ROOT
    r = frontier[-1][1]
    for _, h in reversed(frontier[:-1]):
        r = node_hash(h, r)
    return r


def frontier_size(frontier: Frontier) -> int | None:
    """How many leaves `frontier` holds, or None if it is no tree's (heights not strictly falling,
    or beyond `MAX_HEIGHT`: read back from a file, a height is checked before 2**height is made)."""
    heights = [h for h, _ in frontier]
    if any(a <= b for a, b in itertools.pairwise(heights)) or any(not 0 <= h <= MAX_HEIGHT for h in heights) \
            or any(len(x) != HASH_SIZE for _, x in frontier):
        return None
    return sum(1 << h for h in heights)


def prefix_roots(leaves: Sequence[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The tree head of the first `size` leaves for each of `sizes` (0..len(leaves)), in one pass.

    Keeps the perfect subtrees the prefix so far splits into (`push`: at most log n of them) and
    folds them from the right when a size is asked for: O(n + k log n) instead of O(n) per size,
    so checking a year of nightly checkpoints stays linear in the log."""
    wanted = sorted(set(sizes))
    if any(not 0 <= k <= len(leaves) for k in wanted):
        raise ValueError(f"sizes must be within 0..{len(leaves)}")
    out: dict[int, bytes] = {}
    frontier: Frontier = []
    i = 0
    for k in wanted:
        while i < k:
            push(frontier, leaves[i])
            i += 1
        out[k] = frontier_root(frontier)
    return out


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path for leaf `index` in the tree of all `leaves` (PATH in RFC 6962 §2.1.1)."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    return _path(leaves, index)


def _path(leaves: Sequence[bytes], m: int) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*_path(leaves[:k], m), root(leaves[k:])]
    return [*_path(leaves[k:], m - k), root(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the first `old_size` leaves are a prefix of `leaves` (PROOF in RFC 6962 §2.1.2)."""
    if not 0 <= old_size <= len(leaves):
        raise ValueError(f"old size {old_size} is outside 0..{len(leaves)}")
    if old_size in (0, len(leaves)):
        return []
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """Does `proof` show leaf hash `leaf` at `index` in the tree of `size` leaves with that root? (RFC 9162 §2.1.3.2)"""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof) or len(leaf) != HASH_SIZE:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False  # the proof is longer than the path
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> bool:
    """Is the tree (size1, root1) a prefix of the tree (size2, root2), as `proof` claims? (RFC 9162 §2.1.4.2)"""
    if not 0 <= size1 <= size2 or any(len(p) != HASH_SIZE for p in proof):
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof  # the empty tree is a prefix of every tree
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 a power of two: the old root is itself a node of the new tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2
