"""Who may decide a human approval, and what a decision may say: the rules for user ids,
comments and a node's ``approvers`` entries, shared by the IR checks, the runtime and the
server's named tokens so that one id is valid or invalid everywhere.

A user id is what the journal and every view show as the decider, so it must read as what it
is: 1-128 printable characters (no control, format or bidi characters: U+202E can make
``alice`` look like someone else), no surrounding spaces. A comment is up to 4 KiB of text
whose only control characters are newline and tab, and no bidi overrides.

Example::

    user_id_problem("alice@example.com")          # None: fine
    user_id_problem("ali\\u202ece")               # 'user_id must be 1-128 printable ...'
    may_approve(["alice", "role:finance"], "bob", ("finance",))   # True
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final

#: The longest user id accepted (an id is a name, not a document).
MAX_USER_ID_CHARS: Final = 128
#: The longest approval comment accepted.
MAX_COMMENT_CHARS: Final = 4096
#: An ``approvers`` entry naming a role rather than a user.
ROLE_PREFIX: Final = "role:"

#: Characters that reorder the text around them when shown (Trojan Source, CVE-2021-42574).
_BIDI: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_USER_ID_RULE: Final = (
    f"user_id must be 1-{MAX_USER_ID_CHARS} printable characters without control, format "
    "or bidi characters and without surrounding spaces"
)


def user_id_problem(user_id: object) -> str | None:
    """Why ``user_id`` cannot name a decider, or None."""
    if (
        not isinstance(user_id, str)
        or not 1 <= len(user_id) <= MAX_USER_ID_CHARS
        or not user_id.isprintable()  # False for Cc, Cf (bidi, zero-width), separators
        or user_id != user_id.strip()
    ):
        return _USER_ID_RULE
    return None


def comment_problem(comment: object) -> str | None:
    """Why ``comment`` cannot be recorded with a decision, or None."""
    if not isinstance(comment, str):
        return f"comment must be text, got {type(comment).__name__}"
    if len(comment) > MAX_COMMENT_CHARS:
        return f"comment must be at most {MAX_COMMENT_CHARS} characters, got {len(comment)}"
    for c in comment:
        if (c < " " and c not in "\n\t") or c == "\x7f" or c in _BIDI:
            return (
                "comment must not hold control characters (newline and tab are fine) or bidi "
                f"controls, found U+{ord(c):04X}"
            )
    return None


def approver_problem(entry: object) -> str | None:
    """Why ``entry`` cannot be an ``approvers`` entry (a user id, or ``role:NAME``), or None."""
    if isinstance(entry, str) and entry.startswith(ROLE_PREFIX):
        if user_id_problem(entry[len(ROLE_PREFIX) :]) is not None:
            return f"approver {entry!r}: a role name follows the user id rule ({_USER_ID_RULE})"
        return None
    problem = user_id_problem(entry)
    return None if problem is None else f"approver {entry!r}: {problem}"


def may_approve(approvers: Sequence[str] | None, user_id: str, roles: Collection[str]) -> bool:
    """Does the node's ``approvers`` list admit ``user_id`` holding ``roles``? No list: anyone
    the engine let in may decide (as before approver lists existed)."""
    if approvers is None:
        return True
    return any(
        (a[len(ROLE_PREFIX) :] in roles) if a.startswith(ROLE_PREFIX) else a == user_id
        for a in approvers
    )
