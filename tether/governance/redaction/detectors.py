"""The built-in detectors: a regular expression that finds candidates, and for card numbers
and IBANs a checksum that a candidate must pass.

* ``email``: ``local@domain.tld``.
* ``phone``: international numbers written with a ``+`` and country code (``+31 6 1234
  5678``, ``+1-415-555-0100``: 8 to 15 digits, spaces, dots, dashes or brackets between) and
  North American numbers written with separators (``(415) 555-0100``, ``415-555-0100``).
  A bare run of digits is not taken for a phone number: ids, amounts and times are too.
* ``card``: 13 to 19 digits, optionally grouped by spaces or dashes, passing the Luhn check.
* ``iban``: a country code, two check digits and 11 to 30 letters or digits (optionally in
  groups of four), passing the ISO 13616 mod-97 check.
* ``national_id``: US Social Security numbers written ``AAA-GG-SSSS`` (areas 000, 666 and
  900-999, group 00 and serial 0000 are never issued, so not taken) and UK National Insurance
  numbers (``QQ 12 34 56 C``, with the prefixes HMRC does not issue left out).
* ``api_key``: keys with a vendor's published prefix (OpenAI/Anthropic ``sk-``, Stripe
  ``sk_live_``/``rk_live_``..., GitHub ``ghp_``/``github_pat_``..., GitLab ``glpat-``, Slack
  ``xox?-``, AWS ``AKIA``/``ASIA``, Google ``AIza``) and JSON Web Tokens.
* ``bearer_token``: ``Bearer <token>`` (as in an Authorization header).

Only text is scanned: a number kept as a JSON number is not (name its key in the policy's
``fields`` to replace it whole).

Example::

    [m.group() for m in DETECTORS["card"].finditer("pay 4111 1111 1111 1111 now")]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from tether.ir.governance import REDACT_DETECTORS

#: Not preceded or followed by a letter or digit: a match is a whole token.
_L = r"(?<![A-Za-z0-9])"
_R = r"(?![A-Za-z0-9])"


def luhn_ok(digits: str) -> bool:
    """The Luhn check of a string of digits (what every payment card number passes)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """The ISO 13616 check of an IBAN without spaces: move the first four characters to the
    end, letters to numbers (A=10 ... Z=35), and the number mod 97 is 1."""
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _card(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _iban(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    return 15 <= len(compact) <= 34 and iban_ok(compact)


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of value: ``pattern`` finds candidates, ``check`` (if any) confirms one."""

    name: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None
    #: What any match holds, so text without it is skipped unscanned (most of a view is ids,
    #: times and words): a character it contains, a digit, and its fewest characters.
    needs: str = ""
    needs_digit: bool = False
    min_chars: int = 1

    def may_match(self, text: str, has_digit: bool) -> bool:
        """False only when no match can be in ``text`` (``has_digit``: text holds a digit)."""
        return (
            len(text) >= self.min_chars
            and (has_digit or not self.needs_digit)
            and (not self.needs or self.needs in text)
        )

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """The confirmed matches in ``text``."""
        for match in self.pattern.finditer(text):
            if self.check is None or self.check(match.group()):
                yield match


_UK_NINO_PREFIX_OUT = "(?!BG|GB|NK|KN|TN|NT|ZZ)"

DETECTORS: Final[dict[str, Detector]] = {
    d.name: d
    for d in (
        # Secrets first: a token may hold digit runs another detector would take a part of.
        Detector(
            "bearer_token",
            re.compile(r"(?i)\bbearer[ \t]+[A-Za-z0-9\-._~+/]{8,}=*"),
            min_chars=15,
        ),
        Detector(
            "api_key",
            re.compile(
                _L + r"(?:"
                r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"
                r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"
                r"|gh[pousr]_[A-Za-z0-9]{30,}"
                r"|github_pat_[A-Za-z0-9_]{40,}"
                r"|glpat-[A-Za-z0-9_\-]{20,}"
                r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
                r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
                r"|AIza[0-9A-Za-z_\-]{35}"
                r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
                r")" + _R
            ),
            min_chars=15,  # xoxb- and 10 more
        ),
        Detector(
            "email",
            re.compile(
                r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*"
                r"\.[A-Za-z]{2,}" + _R
            ),
            needs="@",
            min_chars=6,
        ),
        Detector(
            "iban",
            re.compile(_L + r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?" + _R),
            _iban,
            needs_digit=True,
            min_chars=15,
        ),
        Detector(
            "card",
            re.compile(_L + r"[0-9](?:[ -]?[0-9]){12,18}" + _R),
            _card,
            needs_digit=True,
            min_chars=13,
        ),
        Detector(
            "national_id",
            re.compile(
                _L + r"(?:(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}"
                r"|" + _UK_NINO_PREFIX_OUT + r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
                r" ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D])" + _R
            ),
            needs_digit=True,
            min_chars=9,
        ),
        Detector(
            "phone",
            re.compile(
                r"(?:(?<![A-Za-z0-9+])\+[1-9](?:[ .\-()]{0,2}[0-9]){7,14}"
                r"|"
                + _L
                + r"(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4})"
                + _R
            ),
        ),
    )
}

assert set(DETECTORS) == set(REDACT_DETECTORS), "tether.ir.governance names every detector"
