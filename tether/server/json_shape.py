"""What a JSON body may cost before anything decodes it: how deep it nests and how big its
numbers are, read from the bytes in a few C-speed passes.

Decoding 990 nested arrays exhausts Python's recursion limit inside the decoder, and an
integer past 64 bits cannot be journaled: both used to surface as a bare 500 from deep
inside. Checked here, they are a 400 or a 422 that says which limit and by how much.

Example::

    json_shape_problem(b"[" * 990 + b"]" * 990)    # (400, "the body nests 990 levels ...")
    json_shape_problem(b'{"n": 1}')                  # None
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Final

#: Deeper than any workflow or state a person writes; far below the recursion limit.
MAX_DEPTH: Final = 100
#: Longer number literals are refused before a decoder spends time on them.
MAX_NUMBER_CHARS: Final = 100
#: What the journal's msgpack can hold.
INT_RANGE: Final = (-(2**63), 2**64 - 1)

# The closing quote is optional: an unterminated string then runs to the end in one match,
# where a required quote made the engine retry from every later quote (quadratic time).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NUMBER = re.compile(rb"-?[0-9][0-9.eE+-]*")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_shape_problem(body: bytes) -> tuple[int, str] | None:
    """The status and reason a JSON body is refused for, or None if its shape is fine.

    Malformed JSON is left to the decoder (a 400 of its own); only its cost is judged here.
    """
    bare = _STRING.sub(b'""', body)  # brackets and digits inside strings are text
    brackets = bare.translate(None, _NOT_BRACKETS)
    depth = max(accumulate(_STEP[b] for b in brackets), default=0)
    if depth > MAX_DEPTH:
        return 400, f"the body nests {depth} levels deep; at most {MAX_DEPTH} are accepted"
    for match in _NUMBER.finditer(bare):
        text = match.group()
        if len(text) > MAX_NUMBER_CHARS:
            return 422, (
                f"a number of {len(text)} characters; at most {MAX_NUMBER_CHARS} are accepted"
            )
        if text.lstrip(b"-").isdigit() and not INT_RANGE[0] <= int(text) <= INT_RANGE[1]:
            return 422, (
                f"the integer {text.decode()} does not fit in 64 bits "
                f"({INT_RANGE[0]} to {INT_RANGE[1]}); send it as a string"
            )
    return None
