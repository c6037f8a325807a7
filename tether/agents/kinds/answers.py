"""How the answer of a `jamjet` SDK model node lands in state.

The SDK's model nodes name the state key of their answer in ``output_schema`` (a string, not a
JSON schema) and ask for JSON in their prompt text when later nodes read into the answer
(``state.__critic_0_verdict__.passed == true``, ``{{ state.__critic_0_verdict__.feedback }}``).
No schema is sent to the provider. The rule: an answer whose text, stripped of white space and
of one Markdown code fence (```` ```json ... ``` ````), is a JSON object or array lands parsed
(a dict or a list); any other answer lands as its text, unchanged (a number, ``true`` or a
quoted string too: prose that happens to parse stays prose). An answer that only looks like
JSON (``{`` but not valid JSON) stays text, so a gate reading into it sees null, not a crash.

The value is decided where the call is made, so ``node_completed.output`` holds exactly what
the state gets (replay reads it back, never parses again).

Example::

    json_or_text('{"passed": true, "feedback": "ok"}')   # {"passed": True, "feedback": "ok"}
    json_or_text("PASS")                                  # "PASS"
"""

from __future__ import annotations

import json
from typing import Any, Final

#: ``reply`` of a model call whose answer lands by :func:`json_or_text`.
JSON_OR_TEXT: Final = "json_or_text"


def json_or_text(text: str) -> Any:
    """The parsed JSON object or array ``text`` holds, else ``text`` itself."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        body = body[3:-3]
        first, _, rest = body.partition("\n")
        if first.strip().isalpha() or not first.strip():  # the fence's language tag
            body = rest
        body = body.strip()
    if not body.startswith(("{", "[")):
        return text
    try:
        value = json.loads(body)
    except ValueError:
        return text
    return value if isinstance(value, dict | list) else text
