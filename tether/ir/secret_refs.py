"""The syntax of a secret reference in a workflow: ``${secret:NAME}`` as a node's input value
stands for the value of secret NAME where the tool runs (``tether.runtime.secrets``). The IR
holds the reference only, so the workflow's content, its digest and the journal never hold a
secret.

Example::

    secret_name("${secret:STRIPE_KEY}")     # 'STRIPE_KEY'
    secret_name("$amount")                  # None: a state path
    reference_problem("${secret:no spaces}")  # "... is not a secret reference: ..."
"""

from __future__ import annotations

import re
from typing import Final

#: What a reference starts with (also how a step's input is scanned cheaply for one).
REF_PREFIX: Final = "${secret:"
_REF: Final = re.compile(r"\$\{secret:([A-Za-z_][A-Za-z0-9_]{0,127})\}")


def secret_name(value: object) -> str | None:
    """The name ``value`` references when it is exactly ``${secret:NAME}``, else None."""
    if type(value) is str and value.startswith(REF_PREFIX):
        m = _REF.fullmatch(value)
        return m.group(1) if m else None
    return None


def reference_problem(value: object) -> str | None:
    """Why a string that starts like a reference is not a valid one, or None."""
    if type(value) is str and value.startswith(REF_PREFIX) and secret_name(value) is None:
        return (
            f"{value[:80]!r} is not a secret reference: write ${{secret:NAME}}, NAME of "
            "letters, digits and _ (up to 128, not starting with a digit)"
        )
    return None
