"""YAML for recipes and overrides: PyYAML's safe loader with limits on what a file can make it do.

    data = load_yaml(text)  # like yaml.safe_load, or raises yaml.YAMLError

On top of ``yaml.safe_load`` this refuses:

- aliases that copy more than :data:`MAX_ALIAS_NODES` nodes in all (a nest of aliases of
  aliases, "billion laughs", would otherwise expand to gigabytes downstream), and an alias
  inside the section it names (a self-containing structure);
- nesting deeper than :data:`MAX_DEPTH` (deep brackets would otherwise end in RecursionError);
- a key that appears twice in one mapping (YAML keeps the last silently; merge keys ``<<:``
  may still be overridden).

Each refusal is a ``yaml.MarkedYAMLError`` pointing at the line; :func:`describe_yaml_error`
turns any YAML error into one line that never quotes the text of the file.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_ALIAS_NODES = 10_000
MAX_DEPTH = 100
_MERGE_TAG = "tag:yaml.org,2002:merge"
# PyYAML quotes names from the file (an undefined alias, a tag); token kinds like '<scalar>' stay.
_QUOTED_TEXT = re.compile(r"'(?!<[a-z ]+>')[^'\s]{4,}'")


class YamlLimitError(yaml.MarkedYAMLError):
    """A YAML document this loader refuses although PyYAML would load it: the problem is one
    line that says what is allowed."""


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that counts the nodes aliases copy, bounds nesting and rejects duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> nodes in it once its aliases are expanded
        self._alias_nodes = 0
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:  # the anchor's node is still being composed: the alias is inside it
                raise YamlLimitError(
                    problem="an alias refers to the section that contains it; allowed: aliases of finished sections",
                    problem_mark=mark,
                )
            self._alias_nodes += size
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise YamlLimitError(
                    problem=f"aliases expand to more than {MAX_ALIAS_NODES} values; "
                    "allowed: aliases that repeat a few small sections",
                    problem_mark=mark,
                )
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlLimitError(
                problem=f"nested deeper than {MAX_DEPTH} levels; allowed: at most {MAX_DEPTH}",
                problem_mark=self.peek_event().start_mark,
            )
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._sizes[id(child)] for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._sizes[id(key)] + self._sizes[id(value)] for key, value in node.value)
        self._sizes[id(node)] = size
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            lines: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    earlier = lines.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                line = key_node.start_mark.line + 1
                if earlier is not None:
                    where = f"twice on line {line}" if earlier == line else f"lines {earlier} and {line}"
                    raise YamlLimitError(
                        problem=f"duplicate key {_short(key)} ({where}); allowed: each key once in a mapping",
                        problem_mark=key_node.start_mark,
                    )
                lines[key] = line
        return super().construct_mapping(node, deep=deep)


def _short(value: Any, limit: int = 80) -> str:
    """Return ``repr(value)`` of at most ``limit`` characters."""
    text = repr(value[:limit] if isinstance(value, str) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_yaml(text: str) -> Any:
    """Return the object of the one YAML document in ``text`` (as ``yaml.safe_load``); raise
    ``yaml.YAMLError`` for bad syntax and :class:`YamlLimitError` for what this loader refuses
    (see the module docstring)."""
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:  # the depth limit should prevent this; keep it one line regardless
        raise YamlLimitError(problem=f"nested too deeply; allowed: at most {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def describe_yaml_error(err: yaml.YAMLError) -> str:
    """Return a YAML error as one line, ``line L, column C: problem``, without the snippet of the
    file nor the names from it that PyYAML's own message quotes (the file may not be meant to be
    read: a secret, a binary)."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return _QUOTED_TEXT.sub("'...'", " ".join(str(err).split()))[:200]
    problem = " ".join(str(err.problem or err.context or "invalid YAML").split())
    if not isinstance(err, YamlLimitError):
        problem = _QUOTED_TEXT.sub("'...'", problem)
    if len(problem) > 200:
        problem = problem[:197] + "..."
    mark = err.problem_mark or err.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = ""
    if err.context and err.problem and err.context_mark is not None:
        context = f" ({' '.join(err.context.split())[:100]} from line {err.context_mark.line + 1})"
    return f"{where}{problem}{context}"
