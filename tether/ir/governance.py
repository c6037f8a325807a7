"""A workflow's governance settings that have no other home in the IR: ``governance.redact``.

The redaction policy says which personal data and secrets are replaced at every exit of the
engine (API views, logs, traces, evidence bundles; ``tether.governance.redaction`` applies
it). The journal itself keeps the values: replay needs them.

The other governance settings already sit where they act and travel in the IR the same way:
``budget``, ``allowed_tools`` and ``cost_limit_usd`` on the workflow; an agent's ``tools``,
``budget``, ``requires_approval``, ``approvers`` and ``approval_timeout_secs``; a
``human_approval`` node's ``approvers``, ``patchable`` and ``timeout_secs``.

Example (YAML)::

    governance:
      redact:
        mode: hash                       # or mask (the default)
        detectors: [email, card, iban]   # default: every built-in detector
        patterns: {employee_id: "EMP-[0-9]{6}"}
        fields: [password]               # keys whose values are replaced whole
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

#: The built-in detectors, by name (``tether.governance.redaction.detectors``).
REDACT_DETECTORS: Final = (
    "email",
    "phone",
    "card",
    "iban",
    "national_id",
    "api_key",
    "bearer_token",
)
REDACT_MODES: Final = ("mask", "hash")
#: A custom pattern's name goes into the replacement text: kept plain.
_PATTERN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_PATTERNS: Final = 64
MAX_PATTERN_CHARS: Final = 512


class RedactPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What to replace, and how. ``detectors`` None: every built-in one."""

    detectors: list[str] | None = None
    #: Custom patterns: name -> regular expression (Python ``re`` syntax).
    patterns: dict[str, str] = {}
    #: Keys (at any depth) whose values are replaced whole, whatever they hold.
    fields: list[str] = []
    #: ``mask`` replaces a value by ``[REDACTED:kind]``; ``hash`` by a keyed hash of it
    #: (``[kind:1f0c...]``), so equal values can be matched without being readable.
    mode: str = "mask"


class Governance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``governance:`` in YAML and the IR."""

    redact: RedactPolicy | None = None


def redact_policy_problems(policy: RedactPolicy) -> list[tuple[str, str]]:
    """``(subpath, message)`` for each problem in ``policy`` (empty: usable)."""
    problems: list[tuple[str, str]] = []
    if policy.mode not in REDACT_MODES:
        problems.append(("mode", f"redact mode must be mask or hash, got {policy.mode!r}"))
    for i, name in enumerate(policy.detectors or ()):
        if name not in REDACT_DETECTORS:
            problems.append(
                (
                    f"detectors.{i}",
                    f"unknown detector {name!r}: one of {', '.join(REDACT_DETECTORS)}",
                )
            )
    if len(policy.patterns) > MAX_PATTERNS:
        problems.append(
            ("patterns", f"at most {MAX_PATTERNS} patterns, got {len(policy.patterns)}")
        )
    for name, pattern in policy.patterns.items():
        problem = _pattern_problem(name, pattern)
        if problem is not None:
            problems.append((f"patterns.{name}", problem))
    for i, key in enumerate(policy.fields):
        if not key:
            problems.append((f"fields.{i}", "a field name must not be empty"))
    return problems


def _pattern_problem(name: str, pattern: str) -> str | None:
    if not _PATTERN_NAME.match(name):
        return f"pattern name {name!r} must be a letter then letters, digits or _ (up to 64)"
    if name in REDACT_DETECTORS:
        return f"pattern name {name!r} is a built-in detector's: choose another"
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"pattern {name!r} is {len(pattern)} characters; at most {MAX_PATTERN_CHARS}"
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"pattern {name!r} is not a valid regular expression: {exc}"
    if compiled.fullmatch("") is not None:
        return f"pattern {name!r} matches the empty string: it would match everywhere"
    return None
