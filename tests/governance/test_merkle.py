"""The Merkle batches heads are signed in: every head's proof leads to the signed root, and
no other head's does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tether.governance.merkle import build, leaf_hash, root_of


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=70, unique=True), st.data())
def test_each_proof_leads_its_own_leaf_and_only_it_to_the_root(
    messages: list[bytes], data: st.DataObject
) -> None:
    leaves = [leaf_hash(m) for m in messages]
    root, proofs = build(leaves)
    for leaf, proof in zip(leaves, proofs, strict=True):
        assert root_of(leaf, proof) == root
    if len(leaves) > 1:
        i = data.draw(st.integers(0, len(leaves) - 1))
        j = data.draw(st.integers(0, len(leaves) - 1).filter(lambda k: k != i))
        assert root_of(leaves[j], proofs[i]) != root  # a proof is not another head's
    assert root_of(leaves[0], proofs[0] + b"X") is None  # malformed: refused, not guessed
