"""Load YAML text into plain Python values plus a source location for every path.

``yaml.safe_load`` forgets where things were; this composes PyYAML's node graph instead and
records, for each path (a tuple of keys and list indexes), the line and column of the entry.
It also refuses duplicate keys, which PyYAML would silently collapse to the last one, and
input that costs too much: aliases expand into copies, so a few hundred bytes of nested aliases
("billion laughs") can ask for billions of values. The loader counts values as it composes,
an alias counting as the whole node it repeats, and stops at ``MAX_YAML_VALUES`` before any
copy is made.

Example::

    >>> doc = load_yaml("a:\\n  b: 1\\n", "f.yaml")
    >>> doc.data, str(doc.locate(("a", "b")))
    ({'a': {'b': 1}}, 'f.yaml:2')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from tether.ir.errors import WorkflowSyntaxError
from tether.ir.limits import DEFAULT_LIMITS
from tether.ir.types import SourceLocation

Path = tuple[str | int, ...]
_MAX_DEPTH = DEFAULT_LIMITS.max_depth  # one nesting limit for YAML and IR
#: Values a document may hold once its aliases are expanded. A workflow at the node limit
#: (``tether.ir.limits``) with a handful of fields per node stays below it; loading this many
#: values takes a fraction of a second and under 100 MB, which bounds the worst case.
MAX_YAML_VALUES = 200_000


@dataclass
class YamlDocument:
    """Values with their locations; ``scalars`` keeps the raw text of scalar values."""

    file: str
    data: Any
    locations: dict[Path, SourceLocation] = field(default_factory=dict)
    scalars: dict[Path, str] = field(default_factory=dict)

    def locate(self, path: Path) -> SourceLocation | None:
        """The location of ``path``, or of its nearest located ancestor."""
        for end in range(len(path), -1, -1):
            loc = self.locations.get(path[:end])
            if loc is not None:
                return loc
        return None


def _loc(file: str, mark: Any) -> SourceLocation:
    return SourceLocation(file=file, line=mark.line + 1, column=mark.column + 1)


def load_yaml(
    text: str, file: str, *, max_values: int = MAX_YAML_VALUES, max_depth: int = _MAX_DEPTH
) -> YamlDocument:
    """Parse one YAML document; every failure is a ``WorkflowSyntaxError`` with a location.

    ``max_values`` bounds the values the document expands to (see ``MAX_YAML_VALUES``),
    ``max_depth`` the nesting of mappings and lists.
    """
    loader = _BoundedLoader(text, file, max_values, max_depth)
    try:
        root = loader.get_single_node()
        if root is None:
            raise WorkflowSyntaxError("the document is empty", SourceLocation(file, 1, 1))
        doc = YamlDocument(file=file, data=None)
        doc.locations[()] = _loc(file, root.start_mark)
        doc.data = _Walker(loader, doc, max_depth).value(root, (), 0)
        return doc
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, file) from None
    except yaml.YAMLError as exc:  # unmarked errors are rare (e.g. bad encoding)
        raise WorkflowSyntaxError(f"YAML error: {exc}", SourceLocation(file, 1)) from None
    finally:
        loader.dispose()


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> WorkflowSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "malformed YAML"
    if exc.context:
        problem = f"{problem} ({exc.context}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            problem += f" at line {exc.context_mark.line + 1}"
        problem += ")"
    if "\\t" in problem or "\t" in problem:
        problem += "; YAML does not allow tabs for indentation, use spaces"
    loc = _loc(file, mark) if mark is not None else SourceLocation(file, 1)
    return WorkflowSyntaxError(f"YAML syntax error: {problem}", loc)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, composing with a budget of values and of depth.

    Composition is linear in the text (an alias is a reference to the anchored node); the
    copies are made later, by the walker. So the budget is kept here, where an alias costs
    the expanded size of its node, known because that node was composed before it.
    """

    def __init__(self, text: str, file: str, max_values: int, max_depth: int) -> None:
        super().__init__(text)
        self.file = file
        self.max_values = max_values
        self.max_depth = max_depth
        self.values = 0  # values composed so far, each alias counted as its expanded node
        self.depth = 0
        self.anchored_sizes: dict[str, int] = {}  # anchor -> expanded values of its node

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.NodeEvent = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor is not None and event.anchor in self.anchors:  # else PyYAML reports it
                self.count_alias(event.anchor, event.start_mark)
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > self.max_depth:
            raise WorkflowSyntaxError(
                f"YAML nested too deeply (limit {self.max_depth} levels)",
                _loc(self.file, event.start_mark),
            )
        before = self.values
        self.count(1, event.start_mark, "")
        node = super().compose_node(parent, index)
        self.depth -= 1
        if event.anchor is not None:
            self.anchored_sizes[event.anchor] = self.values - before
        return node

    def count_alias(self, anchor: str, mark: Any) -> None:
        size = self.anchored_sizes.get(anchor)
        if size is None:  # anchored but not finished: the alias is inside its own node
            raise WorkflowSyntaxError(
                f"alias *{anchor} is inside the node it names (a recursive alias)",
                _loc(self.file, mark),
            )
        self.count(size, mark, f"alias *{anchor} repeats {size} values")

    def count(self, n: int, mark: Any, what: str) -> None:
        self.values += n
        if self.values > self.max_values:
            raise WorkflowSyntaxError(
                f"too many YAML values once aliases are expanded (limit {self.max_values}): "
                f"{what or 'the document passes the limit'} here",
                _loc(self.file, mark),
            )


class _Walker:
    def __init__(self, loader: yaml.SafeLoader, doc: YamlDocument, max_depth: int) -> None:
        self.loader = loader
        self.doc = doc
        self.max_depth = max_depth

    def value(self, node: yaml.Node, path: Path, depth: int) -> Any:
        if depth > self.max_depth:
            raise WorkflowSyntaxError(
                "YAML nested too deeply (recursive alias?)", _loc(self.doc.file, node.start_mark)
            )
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                self.doc.locations[(*path, i)] = _loc(self.doc.file, item.start_mark)
                out.append(self.value(item, (*path, i), depth + 1))
            return out
        assert isinstance(node, yaml.ScalarNode)
        self.doc.scalars[path] = node.value
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves '<<' merge keys like safe_load does
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            loc = _loc(self.doc.file, key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                raise WorkflowSyntaxError("mapping keys must be plain names", loc)
            # Keys keep their text: 'on:' or '1:' name a node, not True or 1.
            key = key_node.value
            child = (*path, key)
            if key in out:
                first = self.doc.locations[child]
                raise WorkflowSyntaxError(
                    f"duplicate key {key!r} (first defined at line {first.line})", loc
                )
            self.doc.locations[child] = loc
            out[key] = self.value(value_node, child, depth + 1)
        return out
