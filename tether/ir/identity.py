"""A workflow version's identity is its content (I13).

Two submissions of ``id@version`` are the same workflow when their canonical IR is the same:
the IR with presentation left out (source locations, which name the file and folder it was
compiled from) and dict keys in a fixed order, so the same YAML compiled from any folder, or the
same IR sent by the ``jamjet`` SDK with its keys in another order, has one digest.

Example::

    wf = compile_yaml_file("examples/counter.yaml")
    workflow_digest(wf)        # 'sha256:3f1c...'
"""

from __future__ import annotations

import hashlib

import msgspec

from tether.ir.types import AgentKind, WaitKind, Workflow

_PREFIX = "sha256:"


def canonical_ir(wf: Workflow) -> bytes:
    """The bytes a workflow version is identified by: JSON without source locations, dict
    keys sorted (struct fields keep their declared order, which is fixed by the code)."""
    bare = msgspec.structs.replace(wf, locations={}) if wf.locations else wf
    # Decoded once more: a struct built in Python may hold an int where the IR says float
    # (``RetryPolicy(jitter=0)``), which encodes as ``0`` but reads back as ``0.0``; the
    # identity must be the one every reader of the stored IR computes.
    typed = msgspec.json.decode(msgspec.json.encode(bare), type=Workflow)
    # Field by field, as the struct itself encodes (declared order, no spaces), leaving out
    # fields added after versions were registered while they hold their default.
    parts = []
    for name in typed.__struct_fields__:
        value = getattr(typed, name)
        if name in _ADDED_LATER and value == _ADDED_LATER[name]:
            continue
        encoded = msgspec.json.encode(value, order="deterministic")
        if name == "nodes" and any(isinstance(n.kind, _LATER_KINDS) for n in typed.nodes.values()):
            encoded = _without_later_kind_fields(encoded)
        if name in ("nodes", "retry_policies") and _LATER_RETRY_FIELD in encoded:
            encoded = _without_later_retry_fields(encoded, nested=name == "nodes")
        parts.append(_encode(name) + b":" + encoded)
    return b"{" + b",".join(parts) + b"}"


#: Node-kind fields added after versions with such nodes were stored, with their defaults.
_KIND_ADDED_LATER: dict[str, dict[str, object]] = {
    "agent": {"requires_approval": [], "approvers": None, "approval_timeout_secs": None},
    "wait": {"on_timeout": None},
}
_LATER_KINDS = (AgentKind, WaitKind)


def _without_later_kind_fields(encoded: bytes) -> bytes:
    """The nodes' JSON without later-added kind fields at their default (keys keep their
    order: a decode and encode that preserve it)."""
    nodes = msgspec.json.decode(encoded)
    for node in nodes.values():
        kind = node.get("kind", {})
        for field, default in _KIND_ADDED_LATER.get(kind.get("type"), {}).items():
            if field in kind and kind[field] == default:
                del kind[field]
    return msgspec.json.encode(nodes)


#: RetryPolicy fields added after versions with retry policies were stored, with defaults.
_RETRY_ADDED_LATER: dict[str, object] = {"max_lease_losses": 5}
_LATER_RETRY_FIELD = b'"max_lease_losses"'


def _without_later_retry_fields(encoded: bytes, *, nested: bool) -> bytes:
    """Nodes (``nested``: each node's ``retry_policy``) or named retry policies without the
    later-added retry fields at their default (keys keep their order)."""
    entries = msgspec.json.decode(encoded)
    for entry in entries.values():
        policy = entry.get("retry_policy") if nested else entry
        if not isinstance(policy, dict):
            continue  # a policy's name, or none
        for field, default in _RETRY_ADDED_LATER.items():
            if field in policy and policy[field] == default:
                del policy[field]
    return msgspec.json.encode(entries)


#: Workflow fields added after the first versions were stored, with their defaults.
_ADDED_LATER: dict[str, object] = {
    "models": {},
    "mcp_servers": {},
    "budget": None,
    "allowed_tools": None,
    "cost_limit_usd": None,
    "code": None,
    "governance": None,
}
_encode = msgspec.json.encode


def workflow_digest(wf: Workflow) -> str:
    """``sha256:<hex>`` of :func:`canonical_ir`: equal exactly when the content is equal."""
    return digest_of(canonical_ir(wf))


def digest_of(canonical: bytes) -> str:
    """The digest of bytes :func:`canonical_ir` returned (to hash them without encoding twice)."""
    return _PREFIX + hashlib.sha256(canonical).hexdigest()


def short_digest(digest: str) -> str:
    """The first 12 hex digits, for one-line messages (``sha256:3f1c2a9b7e01``)."""
    return digest[: len(_PREFIX) + 12]
