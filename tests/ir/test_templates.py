"""The template language: insertion, paths, filters, escaping, errors, bounds, render_value."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.ir.condition_syntax import RESERVED_NAMES
from tether.ir.conditions import lookup
from tether.ir.errors import WorkflowError
from tether.ir.templates import (
    MAX_TEMPLATE_CHARS,
    Template,
    TemplateError,
    TemplateMissing,
    escape,
    parse_template,
    render_value,
)


def render(text: str, state: dict[str, Any] | None = None, inp: Any = None) -> str:
    return parse_template(text).render(state or {}, inp)


# --- plain cases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state", "expected"),
    [
        ("Plan for: {{ state.query }}", {"query": "tea"}, "Plan for: tea"),
        ("{{state.query}}", {"query": "tea"}, "tea"),
        ("{{   query\n }}", {"query": "tea"}, "tea"),
        ("{{ n }}", {"n": 3}, "3"),
        ("{{ n }}", {"n": 2.5}, "2.5"),
        ("{{ b }}", {"b": True}, "true"),
        ("{{ z }}", {"z": None}, "null"),
        ("{{ xs }}", {"xs": [1, "a", None]}, '[1,"a",null]'),
        ("{{ d }}", {"d": {"k": "é"}}, '{"k":"é"}'),
        ("{{ state.items.0.name }}", {"items": [{"name": "x"}]}, "x"),
        ("{{ items.1 }}", {"items": ["a", "b"]}, "b"),
        ("{{ m.0 }}", {"m": {"0": "zero"}}, "zero"),
        ("{{ state.my-key }}", {"my-key": "h"}, "h"),
        ("{{ state.__plan__ }}", {"__plan__": "p"}, "p"),
        ("{{ state.input }}", {"input": "key named input"}, "key named input"),
        ("{{ state }}", {"a": 1}, '{"a":1}'),
        ("{{ a }}-{{ a }}", {"a": "x"}, "x-x"),
        ("{ not } a placeholder }}", {}, "{ not } a placeholder }}"),
        ('{"json": {"body": 1}}', {}, '{"json": {"body": 1}}'),
    ],
)
def test_render(text: str, state: dict[str, Any], expected: str) -> None:
    assert render(text, state) == expected


def test_input_root() -> None:
    t = parse_template("{{ input.q }} / {{ input }}")
    assert t.render({}, {"q": "why"}) == 'why / {"q":"why"}'


def test_missing_input_when_no_input_given() -> None:
    with pytest.raises(TemplateMissing) as info:
        render("{{ input.q }}")
    assert info.value.path == ("input", "q")
    with pytest.raises(TemplateMissing):
        render("{{ input }}")


def test_variables_are_rooted_unique_and_ordered() -> None:
    t = parse_template("{{ a }} {{ state.a }} {{ input.b.0 }} {{ '{{' }} {{ c | json }}")
    assert t.variables() == (("state", "a"), ("input", "b", "0"), ("state", "c"))
    assert parse_template("{{ state }}").variables() == (("state",),)
    assert parse_template("no placeholders").variables() == ()


def test_template_is_frozen_and_parse_is_cached() -> None:
    t = parse_template("{{ x }}")
    assert isinstance(t, Template)
    with pytest.raises(AttributeError):
        t.source = "other"  # type: ignore[misc]
    assert parse_template("{{ x }}") is t


# --- missing paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state", "path"),
    [
        ("{{ x }}", {}, ("state", "x")),
        ("{{ a.b }}", {"a": {}}, ("state", "a", "b")),
        ("{{ a.b }}", {"a": None}, ("state", "a", "b")),
        ("{{ a.b }}", {"a": "text"}, ("state", "a", "b")),
        ("{{ xs.2 }}", {"xs": [1, 2]}, ("state", "xs", "2")),
        ("{{ xs.k }}", {"xs": [1, 2]}, ("state", "xs", "k")),
        ("{{ x | json }}", {}, ("state", "x")),
        ("{{ x | join }}", {}, ("state", "x")),
    ],
)
def test_missing_path(text: str, state: dict[str, Any], path: tuple[str, ...]) -> None:
    with pytest.raises(TemplateMissing) as info:
        render(text, state)
    assert info.value.path == path
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, WorkflowError)
    message = str(info.value)
    assert ".".join(path) in message and "\n" not in message
    assert "column" in message


def test_present_null_is_not_missing() -> None:
    assert render("{{ a.b }}", {"a": {"b": None}}) == "null"


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state", "expected"),
    [
        ("{{ s | json }}", {"s": 'say "hi"'}, '"say \\"hi\\""'),
        ("{{ xs | json }}", {"xs": [1, 2]}, "[1,2]"),
        ("{{ x | default('none') }}", {}, "none"),
        ('{{ x | default("none") }}', {"x": None}, "none"),
        ("{{ x | default('none') }}", {"x": "set"}, "set"),
        ("{{ x | default(0) }}", {}, "0"),
        ("{{ x | default(-1.5) }}", {}, "-1.5"),
        ("{{ x | default(true) }}", {}, "true"),
        ("{{ x | default(null) }}", {}, "null"),
        ("{{ x | default('') }}", {}, ""),
        ("{{ x | default('a\\nb') }}", {}, "a\nb"),
        ("{{ x | default('it\\'s') }}", {}, "it's"),
        ("{{ x | default('}}') }}", {}, "}}"),
        ("{{ x | default('none') | json }}", {}, '"none"'),
        ("{{ xs | join }}", {"xs": ["a", "b"]}, "ab"),
        ("{{ xs | join(', ') }}", {"xs": ["a", 1, None]}, "a, 1, null"),
        ("{{ state.search_results | join('\\n\\n') }}", {"search_results": ["a", "b"]}, "a\n\nb"),
        ("{{ xs | join('-') | json }}", {"xs": ["a", "b"]}, '"a-b"'),
        ("{{ xs|join(',') }}", {"xs": [[1], {"k": 2}]}, '[1],{"k":2}'),
    ],
)
def test_filters(text: str, state: dict[str, Any], expected: str) -> None:
    assert render(text, state) == expected


def test_join_needs_a_list() -> None:
    with pytest.raises(TemplateError, match=r"column 8: filter 'join' needs a list, got string"):
        render("{{ s | join }}", {"s": "abc"})


# --- escaping -----------------------------------------------------------------------------


def test_escape_literal_braces() -> None:
    assert render("{{ '{{' }} x }}") == "{{ x }}"
    assert render('{{ "{{" }}state.x}}', {"x": 1}) == "{{state.x}}"
    assert render("{{ '{{' }}{{ x }}", {"x": 1}) == "{{1"
    assert escape("a {{ b }}") == "a {{ '{{' }} b }}"
    assert parse_template(escape("{{ x }}")).variables() == ()


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("{{", 1, "unclosed '{{'"),
        ("abc {{ x", 5, "unclosed '{{'"),
        ("ok {{ x }} then {{ y ", 17, "unclosed '{{'"),
        ("{{ }}", 1, "empty placeholder"),
        ("{{}}", 1, "empty placeholder"),
        ("{{ state..x }}", 9, "bad path"),
        ("{{ state.items.-1 }}", 15, "bad path"),
        ("{{ x. }}", 5, "bad path"),
        ("{{ x[0.5] }}", 5, "a subscript takes an integer or a string"),
        ("{{ x[0 }}", 8, "expected ']'"),
        ("{{ split('/') }}", 9, "function calls are not supported"),
        ("{{ x.format(1) }}", 6, "method 'format' is not supported"),
        ("{{ x.__len__() }}", 6, "method '__len__' is not supported"),
        ("{{ x.split(1) }}", 6, "method 'split' takes a string (or null) first"),
        ("{{ x.split('/', 'a') }}", 6, "method 'split' takes an integer count second"),
        ("{{ x.lower(1) }}", 6, "method 'lower' takes 0 arguments, got 1"),
        ("{{ x[0].split() }}", 8, "bad path"),
        ("{{ state.__class__ }}", 10, "'__class__' is a reserved name"),
        ("{{ __import__ }}", 4, "'__import__' is a reserved name"),
        ("{{ 42 }}", 4, "expected a path"),
        ("{{ x y }}", 6, "expected '|' or '}}', got 'y'"),
        ("{{ x | upper }}", 8, "unknown filter 'upper'; known: default, join, json"),
        ("{{ state.q | extract_path }}", 14, "unknown filter 'extract_path'"),
        ("{{ x | }}", 8, "expected a filter name"),
        ("{{ x | default }}", 8, "filter 'default' takes 1 argument, got 0"),
        ("{{ x | default('a', 'b') }}", 8, "filter 'default' takes 1 argument, got 2"),
        ("{{ x | json(1) }}", 8, "filter 'json' takes 0 arguments, got 1"),
        ("{{ x | join(1) }}", 8, "filter 'join' takes a string separator"),
        ("{{ x | default(y) }}", 16, "expected a literal"),
        ("{{ x | default('a' }}", 20, "expected ',' or ')', got '}}'"),
        ("{{ x | default(1e999) }}", 16, "out of range"),
        ("{{ 'abc }}", 4, "unterminated string"),
        ("{{ {{ x }} }}", 4, "cannot nest"),
        ("{{- x }}", 3, "unexpected '-'"),
        ("raw: {{ x", 6, "unclosed '{{'"),
        ("Hi {{ x }}\n{%- if x %}y{%- endif %}", 12, "statements ('{% ... %}') are not supported"),
        ("{% raw %}{{ x", 1, "a template has only {{ }} placeholders"),
    ],
)
def test_parse_errors(text: str, column: int, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(text)
    err = info.value
    assert err.column == column, str(err)
    assert message in err.message
    assert str(err).startswith(f"template column {column}: ")
    assert "\n" not in str(err)


def test_a_statement_opener_may_be_written_as_an_escape() -> None:
    assert parse_template("{{ '{%' }} if %}").render({}) == "{% if %}"


def test_error_quotes_the_placeholder_even_in_multiline_text() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("line one\nline two {{ x | nope }}\n")
    assert info.value.column == 26
    assert "'{{ x | nope }}\\n'" in str(info.value)
    assert "\n" not in str(info.value)


def test_template_size_limit() -> None:
    parse_template("x" * MAX_TEMPLATE_CHARS)
    with pytest.raises(TemplateError, match=r"the limit is 65536"):
        parse_template("x" * (MAX_TEMPLATE_CHARS + 1))


def test_output_limit() -> None:
    t = parse_template("{{ s }}{{ s }}")
    assert t.render({"s": "abc"}, max_output=6) == "abcabc"
    with pytest.raises(TemplateError, match=r"column 8: .*exceeds 5 characters"):
        t.render({"s": "abc"}, max_output=5)
    with pytest.raises(TemplateError, match="exceeds"):
        parse_template("{{ s }}").render({"s": "x" * (1024 * 1024 + 1)})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), {1, 2}, b"bytes"])
def test_only_json_data_is_rendered(value: Any) -> None:
    with pytest.raises(TemplateError, match="not JSON data"):
        render("{{ v }}", {"v": value})


def test_objects_are_never_entered_through_attributes() -> None:
    class Obj:
        name = "secret"

    with pytest.raises(TemplateMissing):
        render("{{ o.name }}", {"o": Obj()})


# --- render_value -------------------------------------------------------------------------


def test_render_value_shapes() -> None:
    state = {"items": [1, 2], "n": 3, "name": "bo", "flag": None}
    body = {
        "items": "{{ state.items }}",
        "n": "{{ n }}",
        "flag": "{{ flag }}",
        "text": "n={{ n }}",
        "json": "{{ items | json }}",
        "padded": " {{ n }}",
        "plain": "no braces",
        "num": 7,
        "nested": [{"who": "{{ name }}"}, "{{ input.q }}", True],
        "{{ key }}": "keys are not rendered",
        "default": "{{ missing | default(0) }}",
        "escaped": "{{ '{{' }}",
    }
    assert render_value(body, state, {"q": "why"}) == {
        "items": [1, 2],
        "n": 3,
        "flag": None,
        "text": "n=3",
        "json": "[1,2]",
        "padded": " 3",
        "plain": "no braces",
        "num": 7,
        "nested": [{"who": "bo"}, "why", True],
        "{{ key }}": "keys are not rendered",
        "default": 0,
        "escaped": "{{",
    }


def test_render_value_scalars_and_errors() -> None:
    assert render_value("{{ x }}", {"x": {"a": [1]}}) == {"a": [1]}
    assert render_value(None, {}) is None
    assert render_value(("{{ x }}",), {"x": 1}) == [1]
    with pytest.raises(TemplateMissing):
        render_value({"a": ["{{ nope }}"]}, {})
    with pytest.raises(TemplateError, match="unknown filter"):
        render_value({"a": "{{ x | bad }}"}, {"x": 1})


def test_render_value_output_budget_is_shared() -> None:
    body = ["a{{ s }}", "b{{ s }}"]
    assert render_value(body, {"s": "xy"}, max_output=6) == ["axy", "bxy"]
    with pytest.raises(TemplateError, match="exceeds 5"):
        render_value(body, {"s": "xy"}, max_output=5)


def test_render_value_leaves_the_input_unchanged() -> None:
    body = {"a": ["{{ x }}"]}
    render_value(body, {"x": 1})
    assert body == {"a": ["{{ x }}"]}


# --- properties ---------------------------------------------------------------------------

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s not in RESERVED_NAMES
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=20,
)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@given(st.text().filter(lambda s: "{{" not in s))
def test_text_without_placeholders_renders_to_itself(text: str) -> None:
    assert parse_template(text).render({}) == text
    assert render_value(text, {}) == text


@given(st.dictionaries(NAMES, JSON, min_size=1, max_size=5), st.data())
def test_rendering_a_path_gives_the_looked_up_value(state: dict[str, Any], data: Any) -> None:
    path = [data.draw(st.sampled_from(sorted(state)))]
    value = state[path[0]]
    while isinstance(value, dict | list) and value and data.draw(st.booleans()):
        key = data.draw(
            st.sampled_from(sorted(value) if isinstance(value, dict) else range(len(value)))
        )
        path.append(str(key))
        value = value[key]
    assert lookup(state, tuple(path)) == value
    bare = path[0] not in ("state", "input")
    source = ".".join(path) if bare and data.draw(st.booleans()) else "state." + ".".join(path)
    template = parse_template("{{ " + source + " }}")
    assert template.variables() == (("state", *path),)
    assert template.render(state) == _as_text(value)
    assert render_value("{{" + source + "}}", state) == value


FRAGMENTS = st.sampled_from(
    ["{{", "}}", "{", "}", " ", "|", "'", '"', "\\", "(", ")", ",", ".", "0", "x", "state",
     "input", "json", "default", "join", "[", "]", "\n", "__class__", "-", "1e999", "é"]
)  # fmt: skip


@settings(max_examples=300)
@given(st.text() | st.lists(FRAGMENTS, max_size=30).map("".join))
def test_parse_raises_only_template_errors(text: str) -> None:
    try:
        template = parse_template(text)
    except TemplateError as exc:
        assert 1 <= exc.column <= len(text) + 1
        assert "\n" not in str(exc)
        return
    with contextlib.suppress(TemplateError, TemplateMissing):
        template.render({"x": ["a"], "state": {"x": 1}}, {"x": 2})


@given(st.text())
def test_escape_round_trips(text: str) -> None:
    template = parse_template(escape(text))
    assert template.variables() == ()
    assert template.render({}) == text


def test_python_internals_are_refused() -> None:
    hostile = "{{ state.__class__.__mro__ }}"
    with pytest.raises(TemplateError, match="reserved name"):
        parse_template(hostile)


@pytest.mark.parametrize(
    ("text", "state", "rendered"),
    [
        ("{{ state.repo.split('/')[0] }}", {"repo": "owner/name"}, "owner"),
        ("{{ repo.split('/')[1] }}", {"repo": "owner/name"}, "name"),
        ("{{ repo.split('/')[-1] }}", {"repo": "a/b/c"}, "c"),
        ("{{ repo.split('/', 1) }}", {"repo": "a/b/c"}, '["a","b/c"]'),
        ("{{ words.split() | join('-') }}", {"words": " a  b "}, "a-b"),
        ("{{ s.strip() }}", {"s": "  x "}, "x"),
        ("{{ s.strip('-') }}", {"s": "-x-"}, "x"),
        ("{{ s.lower() }}{{ s.upper() }}", {"s": "Ab"}, "abAB"),
        ("{{ xs[0] }}/{{ xs[-1] }}", {"xs": [1, 2, 3]}, "1/3"),
        ("{{ m['k'] }}{{ m['k'][1] }}", {"m": {"k": "vw"}}, "vww"),
        ("{{ xs[5] | default('none') }}", {"xs": [1]}, "none"),
        ("{{ m['absent'] | default(0) }}", {"m": {}}, "0"),
        ("{{ s[0] }}", {"s": "xyz"}, "x"),
    ],
)
def test_a_string_method_and_subscripts_follow_a_path_as_in_jinja(
    text: str, state: dict[str, Any], rendered: str
) -> None:
    assert parse_template(text).render(state) == rendered


@pytest.mark.parametrize(
    ("text", "state", "error"),
    [
        ("{{ n.split() }}", {"n": 3}, "template column 6: method 'split' needs a string, got"),
        ("{{ n[0] }}", {"n": 3}, "template column 5: cannot take [0] of"),
        ("{{ m[0] }}", {"m": {"0": 1}}, "cannot take [0] of"),
        ("{{ xs['a'] }}", {"xs": [1]}, "cannot take ['a'] of"),
    ],
)
def test_a_method_or_subscript_on_the_wrong_kind_of_value_is_a_template_error(
    text: str, state: dict[str, Any], error: str
) -> None:
    with pytest.raises(TemplateError, match=re.escape(error)):
        parse_template(text).render(state)


def test_a_missing_item_is_missing_and_names_the_path() -> None:
    with pytest.raises(TemplateMissing, match=r"state\.xs"):
        parse_template("{{ xs[3] }}").render({"xs": []})
    assert parse_template("{{ repo.split('/')[0] }}").variables() == (("state", "repo"),)
