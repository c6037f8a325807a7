"""A redaction policy made usable: replace what its detectors find in text and JSON values.

``mask`` replaces a match by ``[REDACTED:kind]``; ``hash`` by ``[kind:<16 hex>]``, the first
64 bits of HMAC-SHA256 under the engine's redaction key over the kind and the value, so two
equal values show the same token (a run can be followed across views) while the value
cannot be read or guessed back without the key (a plain hash of a phone number could be).

Example::

    r = Redactor(RedactPolicy(mode="mask"))
    r.text("mail ann@example.com")          # 'mail [REDACTED:email]'
    r.value({"card": "4111 1111 1111 1111", "n": 3})
    # {'card': '[REDACTED:card]', 'n': 3}
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from tether.governance.redaction.detectors import DETECTORS, Detector
from tether.ir.governance import REDACT_DETECTORS, RedactPolicy

_canonical = msgspec.json.Encoder(order="sorted")
_DIGIT = re.compile(r"[0-9]")


class RedactionKeyMissing(ValueError):
    """A ``hash`` policy without a key to hash under."""


class Redactor:
    """One policy, compiled (its patterns once); immutable once built."""

    __slots__ = ("_detectors", "_fields", "_key", "policy")

    def __init__(self, policy: RedactPolicy, key: bytes | None = None) -> None:
        if policy.mode == "hash" and not key:
            raise RedactionKeyMissing("a hash redaction policy needs a key (TETHER_REDACT_KEY)")
        chosen = set(REDACT_DETECTORS if policy.detectors is None else policy.detectors)
        detectors = [DETECTORS[name] for name in DETECTORS if name in chosen]
        detectors += [Detector(n, re.compile(p)) for n, p in sorted(policy.patterns.items())]
        self.policy = policy
        self._detectors = tuple(detectors)
        self._fields = frozenset(policy.fields)
        self._key = key if policy.mode == "hash" else None

    def text(self, text: str) -> str:
        """``text`` with every detected value replaced."""
        has_digit = _DIGIT.search(text) is not None
        for detector in self._detectors:
            if detector.may_match(text, has_digit):
                text = self._replace(detector, text)
        return text

    def _replace(self, detector: Detector, text: str) -> str:
        out: list[str] = []
        last = 0
        for match in detector.finditer(text):
            out.append(text[last : match.start()])
            out.append(self.token(detector.name, match.group()))
            last = match.end()
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)

    def token(self, kind: str, value: str) -> str:
        """What replaces ``value`` found as ``kind``."""
        if self._key is None:
            return f"[REDACTED:{kind}]"
        digest = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256)
        return f"[{kind}:{digest.hexdigest()[:16]}]"

    def value(self, value: Any) -> Any:
        """A JSON-like value (dicts, lists, strings, numbers) with its text redacted, keys
        included; the values of the policy's ``fields`` replaced whole."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                if isinstance(k, str) and k in self._fields:
                    out[k] = self.token(k, _canonical.encode(v).decode())
                else:
                    out[self.text(k) if isinstance(k, str) else k] = self.value(v)
            return out
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def merge_policies(policies: Iterable[RedactPolicy]) -> RedactPolicy | None:
    """One policy doing what each of ``policies`` does (None: there are none). Detectors,
    patterns and fields are united; ``mask`` wins over ``hash`` (it shows less)."""
    found = list(policies)
    if not found:
        return None
    detectors: set[str] | None = set()
    patterns: dict[str, str] = {}
    fields: set[str] = set()
    for policy in found:
        if policy.detectors is None or detectors is None:
            detectors = None
        else:
            detectors.update(policy.detectors)
        for name, pattern in policy.patterns.items():
            if patterns.get(name, pattern) != pattern:  # two policies, one name: keep both
                name = f"{name}_{len(patterns)}"
            patterns[name] = pattern
        fields.update(policy.fields)
    mode = "mask" if any(p.mode == "mask" for p in found) else "hash"
    return RedactPolicy(
        detectors=None if detectors is None else sorted(detectors),
        patterns=patterns,
        fields=sorted(fields),
        mode=mode,
    )
