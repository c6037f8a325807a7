"""The redaction detectors one by one (matches and the near misses they must leave alone), the
redactor over JSON values in both modes, policies merged, and the engine's settings."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.governance.redaction import (
    RedactionKeyMissing,
    RedactionSettingsError,
    Redactor,
    RedactPolicy,
    merge_policies,
    policy_from_env,
    redaction_key,
)
from tether.governance.redaction.detectors import DETECTORS, iban_ok, luhn_ok
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowError

MASK = Redactor(RedactPolicy())


def _found(name: str, text: str) -> list[str]:
    return [m.group() for m in DETECTORS[name].finditer(text)]


GH = "ghp_" + "a1B2" * 9  # a GitHub token's shape: the prefix and 36 letters or digits
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk"
CASES = [
    ("email", "write to ann.b+tag@mail.example.co.uk today", ["ann.b+tag@mail.example.co.uk"]),
    ("email", "no mail: ann@ nor @example.com nor ann@example", []),
    (
        "phone",
        "call +31 6 1234 5678 or +1 (415) 555-0100.",
        ["+31 6 1234 5678", "+1 (415) 555-0100"],
    ),
    ("phone", "or (415) 555-0100 or 415.555.0100", ["(415) 555-0100", "415.555.0100"]),
    # Bare digits are ids, amounts and times, not phone numbers; too short after a +.
    ("phone", "id 31612345678, at 1765083765000, tz +01:00, +12 345", []),
    (
        "card",
        "visa 4111 1111 1111 1111, amex 3782-822463-10005",
        ["4111 1111 1111 1111", "3782-822463-10005"],
    ),
    ("card", "mc 5555555555554444 end", ["5555555555554444"]),
    # The Luhn check fails: not a card number.
    ("card", "4111 1111 1111 1112 and 5555555555554443", []),
    ("iban", "pay NL91 ABNA 0417 1643 00 now", ["NL91 ABNA 0417 1643 00"]),
    (
        "iban",
        "GB82WEST12345698765432 and DE89370400440532013000",
        ["GB82WEST12345698765432", "DE89370400440532013000"],
    ),
    # Check digits that do not hold (mod 97), and one a letter short of an IBAN.
    ("iban", "NL92ABNA0417164300 GB82WEST1234569876543X DE8937040044", []),
    ("national_id", "ssn 123-45-6789, nino AB 12 34 56 C", ["123-45-6789", "AB 12 34 56 C"]),
    ("national_id", "or AB123456C", ["AB123456C"]),
    # Never issued: SSN areas 000, 666, 9xx, group 00, serial 0000; NINO prefixes BG, D..
    ("national_id", "000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000", []),
    ("national_id", "BG123456C DA123456C AB123456E 123456789", []),
    (
        "api_key",
        f"OPENAI sk-proj-abcdefghijklmnop1234 and {GH}",
        ["sk-proj-abcdefghijklmnop1234", GH],
    ),
    (
        "api_key",
        "aws AKIAIOSFODNN7EXAMPLE stripe sk_live_abcdefghij12",
        ["AKIAIOSFODNN7EXAMPLE", "sk_live_abcdefghij12"],
    ),
    ("api_key", f"jwt {JWT}", [JWT]),
    # Ids and digests that look random are not keys.
    ("api_key", "exec_01JEXAMPLE0000000000000000 sha256:3f1c2a9b7e01 task-sk-1", []),
    ("bearer_token", "Authorization: Bearer abc.DEF-123_456~x==", ["Bearer abc.DEF-123_456~x=="]),
    ("bearer_token", "a bearer of news; Bearer short", []),
]


@pytest.mark.parametrize(("name", "text", "found"), CASES)
def test_each_detector_finds_its_values_and_leaves_near_misses(
    name: str, text: str, found: list[str]
) -> None:
    assert _found(name, text) == found


def test_checksums_of_cards_and_ibans() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("NL91ABNA0417164300") and not iban_ok("NL91ABNA0417164301")


def _luhn_digit(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return d
    raise AssertionError("a Luhn digit always exists")


def _iban(country: str, bban: str) -> str:
    for check in range(2, 99):
        candidate = f"{country}{check:02d}{bban}"
        if iban_ok(candidate):
            return candidate
    raise AssertionError("check digits always exist")


@settings(max_examples=200, deadline=None)
@given(st.text("0123456789", min_size=15, max_size=15), st.integers(0, 14))
def test_any_luhn_valid_card_is_masked_and_one_digit_off_is_not(body: str, at: int) -> None:
    number = "4" + body + _luhn_digit("4" + body)  # 17 digits
    assert MASK.text(f"card {number} ok") == "card [REDACTED:card] ok"
    wrong = str((int(number[-1]) + 1) % 10)
    assert "[REDACTED:card]" not in MASK.text(f"card {number[:-1]}{wrong} ok")


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["NL", "DE", "GB", "FR"]),
    st.text("ABCDEFGHIJ0123456789", min_size=14, max_size=18),
)
def test_any_valid_iban_is_masked_and_wrong_check_digits_are_not(country: str, bban: str) -> None:
    iban = _iban(country, bban)
    assert MASK.text(f"to {iban}.") == "to [REDACTED:iban]."
    wrong = f"{country}{(int(iban[2:4]) + 1) % 100:02d}{bban}"
    assert "[REDACTED:iban]" not in MASK.text(f"to {wrong}.")


def test_values_keys_fields_and_custom_patterns() -> None:
    r = Redactor(RedactPolicy(patterns={"employee": r"EMP-[0-9]{6}"}, fields=["password"]))
    value = {
        "ann@example.com": {"note": ["EMP-123456 called +44 20 7946 0958", 3, None]},
        "password": {"any": "shape"},
        "n": 4111111111111111,  # a JSON number is not text: not scanned
    }
    assert r.value(value) == {
        "[REDACTED:email]": {"note": ["[REDACTED:employee] called [REDACTED:phone]", 3, None]},
        "password": "[REDACTED:password]",
        "n": 4111111111111111,
    }


def test_only_the_chosen_detectors_run() -> None:
    r = Redactor(RedactPolicy(detectors=["email"]))
    assert r.text("ann@example.com 4111 1111 1111 1111") == "[REDACTED:email] 4111 1111 1111 1111"


def test_hash_mode_tokens_correlate_without_revealing() -> None:
    key = b"k" * 32
    r = Redactor(RedactPolicy(mode="hash"), key)
    one, again = r.text("ann@example.com"), r.text("mail ann@example.com")
    assert one.startswith("[email:") and again == f"mail {one}"
    assert r.text("bob@example.com") != one
    assert Redactor(RedactPolicy(mode="hash"), b"o" * 32).text("ann@example.com") != one
    assert "ann" not in one
    with pytest.raises(RedactionKeyMissing):
        Redactor(RedactPolicy(mode="hash"))


def test_merged_policies_do_what_each_does() -> None:
    merged = merge_policies(
        [
            RedactPolicy(detectors=["email"], mode="hash", patterns={"a": "A+B"}),
            RedactPolicy(detectors=["card"], fields=["pw"], patterns={"a": "C+D"}),
        ]
    )
    assert merged is not None
    assert merged.detectors == ["card", "email"] and merged.fields == ["pw"]
    assert sorted(merged.patterns.values()) == ["A+B", "C+D"] and merged.mode == "mask"
    assert merge_policies([RedactPolicy(detectors=["email"]), RedactPolicy()]).detectors is None  # type: ignore[union-attr]
    assert merge_policies([]) is None


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ("{mode: hush}", "governance.redact.mode: redact mode must be mask or hash"),
        ("{detectors: [mail]}", "governance.redact.detectors.0: unknown detector 'mail'"),
        ("{patterns: {p: '(x'}}", "governance.redact.patterns.p: pattern 'p' is not a valid"),
        ("{patterns: {p: 'x*'}}", "matches the empty string"),
        ("{patterns: {email: 'x+'}}", "is a built-in detector's"),
        ("{mod: hash}", "unknown field `mod`"),
    ],
)
def test_a_bad_policy_in_yaml_is_one_clear_error(policy: str, says: str) -> None:
    text = f"workflow: {{id: w}}\ngovernance:\n  redact: {policy}\nnodes:\n  a: {{type: end}}\n"
    with pytest.raises(WorkflowError) as caught:
        compile_yaml_text(text)
    assert says in str(caught.value)


def test_engine_policy_from_the_environment(tmp_path: Path) -> None:
    assert policy_from_env({}) is None
    assert policy_from_env({"TETHER_REDACT": "hash"}) == RedactPolicy(mode="hash")
    assert policy_from_env({"TETHER_REDACT": '{"detectors": ["email"]}'}) == RedactPolicy(
        detectors=["email"]
    )
    path = tmp_path / "policy.yaml"
    path.write_text("fields: [ssn]\nmode: mask\n")
    assert policy_from_env({"TETHER_REDACT": str(path)}) == RedactPolicy(fields=["ssn"])
    for bad in ("{not json", str(tmp_path / "missing.yaml"), '{"mode": "hush"}'):
        with pytest.raises(RedactionSettingsError, match="TETHER_REDACT"):
            policy_from_env({"TETHER_REDACT": bad})


def test_the_hash_key_is_made_once_outside_the_database(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first = redaction_key({}, keys)
    assert redaction_key({}, keys) == first and len(first) == 32
    assert stat.S_IMODE(os.stat(keys / "redaction.key").st_mode) == 0o600
    assert redaction_key({"TETHER_REDACT_KEY": "x" * 32}, keys) == b"x" * 32
    with pytest.raises(RedactionSettingsError, match="at least 32"):
        redaction_key({"TETHER_REDACT_KEY": "short"}, keys)


def _unfiltered(text: str) -> str:
    """Every detector run over ``text`` with no skipping (what the prefilter must equal)."""
    for detector in DETECTORS.values():
        parts, last = [], 0
        for m in detector.finditer(text):
            parts += [text[last : m.start()], f"[REDACTED:{detector.name}]"]
            last = m.end()
        text = "".join(parts) + text[last:] if parts else text
    return text


_PIECES = st.sampled_from(
    ["ann@example.com", "+31 6 1234 5678", "4111 1111 1111 1111", "NL91ABNA0417164300",
     "123-45-6789", "AB123456C", "xoxb-1234567890", "Bearer abcdefgh12", "@", "+", "-", " "]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text("ab1@+- .", max_size=6)), max_size=8))
def test_skipping_text_no_match_can_be_in_changes_nothing(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert MASK.text(text) == _unfiltered(text)
