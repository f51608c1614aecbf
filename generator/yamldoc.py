"""Read YAML text into plain data, the location of every key path, and what was refused.

Nodes are composed with PyYAML's safe loader and turned into data here rather
than by its constructor, so that every value keeps the line and column it came
from, and YAML's hazards are refused where they occur: duplicate and non-string
keys, aliases that expand without bound, nesting too deep, tabs, tags other than
text, numbers, booleans, null, mappings and lists, and text holding control
characters or lone surrogates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from dspy_forge.errors import Location, SpecError
from dspy_forge.errors import Path as KeyPath

MAX_BYTES = 1_000_000
MAX_NODES = 100_000  # nodes visited, aliases counted each time they are expanded
MAX_DEPTH = 50
# Characters refused in any text: C0/C1 controls other than tab and newline, and lone
# surrogates (which cannot be written to a file as UTF-8).
BAD_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
MERGE_TAG = "tag:yaml.org,2002:merge"
# The only YAML types a spec holds; any other tag (!!python/..., !!binary, a date) is refused.
ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("map", "seq", "str", "int", "float", "bool", "null")
)
_INVALID = object()  # stands for a refused value; never reaches validation


@dataclass
class Parsed:
    """A YAML document as data, where each key path is, and what was refused."""

    data: dict[str, Any] | None
    locations: dict[KeyPath, Location] = field(default_factory=dict)
    errors: list[SpecError] = field(default_factory=list)
    broken: list[KeyPath] = field(default_factory=list)  # values left out of ``data``


class _Refused(Exception):
    """The document cannot be read further (too large or too deep)."""

    def __init__(self, error: SpecError) -> None:
        self.error = error


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to compose nodes nested beyond ``MAX_DEPTH``.

    Composing is recursive, so without the limit a document of a few thousand
    ``[`` would end in a RecursionError rather than a located error.
    """

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                message = f"values are nested more than {MAX_DEPTH} levels deep; refusing it"
                raise _Refused(SpecError((), message, Location(mark.line + 1, mark.column + 1)))
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Reader:
    """Turns a composed YAML node tree into data and a path -> location map."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.parsed = Parsed(data=None)
        self.visited = 0

    def refuse(self, path: KeyPath, message: str, node: yaml.Node, *, broken: bool = True) -> None:
        """Record an error; ``broken`` when the value at ``path`` is left out of the data."""
        self.parsed.errors.append(SpecError(path, message, _location(node)))
        if broken:
            self.parsed.broken.append(path)

    def read(self, node: yaml.Node, path: KeyPath, depth: int = 0) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise _Refused(
                SpecError(
                    path,
                    f"the document expands to more than {MAX_NODES} values (aliases?); refusing it",
                    _location(node),
                )
            )
        if depth > MAX_DEPTH:
            message = f"values are nested more than {MAX_DEPTH} levels deep; refusing it"
            raise _Refused(SpecError(path, message, _location(node)))
        self.parsed.locations.setdefault(path, _location(node))
        if node.tag not in ALLOWED_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.refuse(
                path,
                f"the YAML tag {tag} is not allowed; a spec holds only text, numbers, "
                "true/false, null, mappings and lists (quote the value to make it text)",
                node,
            )
            return _INVALID
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> dict[str, Any]:
        """Keys and values; a key merged in with ``<<`` may be overridden, no other repeated."""
        own_count = sum(1 for key_node, _ in node.value if key_node.tag != MERGE_TAG)
        self.loader.flatten_mapping(node)  # merged pairs first, then the mapping's own
        first_own = len(node.value) - own_count
        result: dict[str, Any] = {}
        own: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.key(key_node, path)
            if key is None:
                continue
            if index >= first_own:
                if key in own:
                    # The first value stays and is checked; only the repeat is an error.
                    message = f"duplicate key {key!r}; each key may appear once"
                    error = SpecError((*path, key), message, _location(key_node))
                    self.parsed.errors.append(error)
                    continue
                own.add(key)
            self.parsed.locations[(*path, key)] = _location(key_node)
            result[key] = self.read(value_node, (*path, key), depth + 1)  # later ones win
        return result

    def key(self, node: yaml.Node, path: KeyPath) -> str | None:
        """A mapping key, or None when it is refused (the entry is then skipped)."""
        if not isinstance(node, yaml.ScalarNode):
            kind = "mapping" if isinstance(node, yaml.MappingNode) else "list"
            self.refuse(path, f"keys must be text, found a {kind}", node, broken=False)
            return None
        key = self.scalar(node, path, broken=False)
        if key is _INVALID:
            return None
        if not isinstance(key, str):
            hint = (
                " (YAML reads yes/no/on/off as booleans: quote it)" if isinstance(key, bool) else ""
            )
            self.refuse(path, f"keys must be text, found {shown(key)}{hint}", node, broken=False)
            return None
        return key

    def scalar(self, node: yaml.Node, path: KeyPath, *, broken: bool = True) -> Any:
        def refuse(message: str) -> object:
            self.refuse(path, message, node, broken=broken)
            return _INVALID

        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            return refuse(f"cannot read this value: {exc.problem}")
        except (ValueError, OverflowError):  # Python refuses ints of over 4300 digits
            return refuse("cannot read this value: a number too long to convert")
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            bad = BAD_CHARACTER.search(value)
            if bad is None:
                return value
            char = bad.group()
            kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
            return refuse(
                f"text holds {kind}, U+{ord(char):04X}, at index {bad.start()}; "
                "only tab and newline are allowed besides printable characters"
            )
        return refuse(f"expected text, a number, true/false or null, found {shown(value)}")


def _location(node: yaml.Node) -> Location:
    return Location(node.start_mark.line + 1, node.start_mark.column + 1)


def shown(value: Any) -> str:
    """A short form of a found value for a message."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _position(text: str, index: int) -> Location:
    line = text.count("\n", 0, index) + 1
    return Location(line, index - text.rfind("\n", 0, index))


def parse_yaml(text: str) -> Parsed:
    """Parse YAML text into data, the location of every key path, and what was refused."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return Parsed(None, errors=[SpecError((), f"the file is larger than {MAX_BYTES} bytes")])
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
        if root is None:
            return Parsed(None, errors=[SpecError((), "the document is empty", Location(1, 1))])
        reader = _Reader(loader)
        data = reader.read(root, ())
    except _Refused as exc:
        return Parsed(None, errors=[exc.error])
    except yaml.reader.ReaderError as exc:
        message = (
            f"the file holds the character U+{exc.character:04X}, which YAML refuses "
            "(write it as an escape in a double-quoted string)"
        )
        return Parsed(None, errors=[SpecError((), message, _position(text, exc.position))])
    except yaml.MarkedYAMLError as exc:
        return Parsed(None, errors=[_yaml_error(exc)])
    except yaml.YAMLError as exc:
        return Parsed(None, errors=[SpecError((), f"invalid YAML: {exc}")])
    except RecursionError:
        return Parsed(None, errors=[SpecError((), "values are nested too deeply; refusing it")])
    finally:
        if loader is not None:
            loader.dispose()
    parsed = reader.parsed
    if not isinstance(data, dict):
        found = "nothing" if data is _INVALID else shown(data)
        message = f"the document must be a mapping of keys (version, service, ...), found {found}"
        return Parsed(None, errors=[*parsed.errors, SpecError((), message, _location(root))])
    parsed.data = data
    return parsed


def _yaml_error(exc: yaml.MarkedYAMLError) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    location = Location(mark.line + 1, mark.column + 1) if mark else None
    if exc.problem and "'\\t'" in exc.problem:
        message = "a tab character: YAML allows only spaces for indentation; use spaces"
        return SpecError((), message, location)
    message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
    return SpecError((), f"invalid YAML: {message}", location)
