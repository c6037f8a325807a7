"""A Merkle tree over one signing pass's chain heads, so a pass costs one Ed25519 signature
however many executions moved, and each head still verifies on its own (its proof and the
batch's signature travel with it, in the database and in an evidence bundle).

Leaves and inner nodes are domain-separated (``0x00`` / ``0x01`` prefixes, as RFC 6962 does),
so an inner node can never pass for a leaf. A node without a sibling moves up unchanged. A
proof is a run of 33-byte steps: a side byte (``L``: the sibling is on the left) and the
sibling's hash.

Example::

    root, proofs = build([leaf_a, leaf_b, leaf_c])
    assert root_of(leaf_b, proofs[1]) == root
"""

from __future__ import annotations

from hashlib import sha256

_STEP = 33


def leaf_hash(message: bytes) -> bytes:
    return sha256(b"\x00" + message).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def build(leaves: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The root over ``leaves`` (already hashed with ``leaf_hash``) and each leaf's proof."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    proofs = [bytearray() for _ in leaves]
    # Each entry: a node's hash and the leaves under it (their proofs grow as we go up).
    level: list[tuple[bytes, list[int]]] = [(h, [i]) for i, h in enumerate(leaves)]
    while len(level) > 1:
        up: list[tuple[bytes, list[int]]] = []
        for i in range(0, len(level) - 1, 2):
            (left, lows), (right, highs) = level[i], level[i + 1]
            for leaf in lows:
                proofs[leaf] += b"R" + right
            for leaf in highs:
                proofs[leaf] += b"L" + left
            up.append((_node(left, right), lows + highs))
        if len(level) % 2:
            up.append(level[-1])
        level = up
    return level[0][0], [bytes(p) for p in proofs]


def root_of(leaf: bytes, proof: bytes) -> bytes | None:
    """The root ``proof`` leads ``leaf`` to, or None for a malformed proof."""
    if len(proof) % _STEP:
        return None
    node = leaf
    for i in range(0, len(proof), _STEP):
        side, sibling = proof[i : i + 1], proof[i + 1 : i + _STEP]
        if side == b"L":
            node = _node(sibling, node)
        elif side == b"R":
            node = _node(node, sibling)
        else:
            return None
    return node
