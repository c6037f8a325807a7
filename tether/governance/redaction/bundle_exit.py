"""The evidence bundles' exit: an execution's chained rows with their payloads redacted.

A row's payload is its record's msgpack map; it is decoded, redacted (the record's ``type``
kept, so it still decodes as its record) and encoded again, and only rows the policy changed
are replaced and named. The JSON bundle's tables are derived from these rows and the PDF is
rendered from that bundle, so both carry only what the rows carry.

Example::

    rows, hidden = redact_rows(journal.rows, redactor)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from tether.governance.redaction.redactor import Redactor
from tether.persistence.audit_chain import ChainedRow


def redact_rows(
    rows: Sequence[ChainedRow], redactor: Redactor
) -> tuple[list[ChainedRow], frozenset[int]]:
    """``rows`` with each payload redacted, and the seqs of the rows that changed."""
    out: list[ChainedRow] = []
    hidden: set[int] = set()
    for row in rows:
        try:
            value = msgspec.msgpack.decode(row.payload)
        except msgspec.DecodeError:  # a broken row: export names it as the verifier does
            out.append(row)
            continue
        redacted = redactor.value(value)
        if isinstance(value, dict) and isinstance(redacted, dict) and "type" in value:
            redacted["type"] = value["type"]  # a record's tag is not data
        if redacted == value:
            out.append(row)
            continue
        hidden.add(row.seq)
        out.append(msgspec.structs.replace(row, payload=msgspec.msgpack.encode(redacted)))
    return out, frozenset(hidden)


def redaction_note(redactor: Redactor, hidden: frozenset[int]) -> dict[str, Any]:
    """What a redacted bundle says about its redaction: the policy and the rows it changed."""
    note: dict[str, Any] = msgspec.to_builtins(redactor.policy)
    note["rows"] = sorted(hidden)
    return note
