"""Read YAML text into plain data, the location of every key path, and what was refused.

Nodes are composed with PyYAML's safe loader and turned into data here rather
than by its constructor, so that every value keeps the line and column it came
from, and YAML's hazards are refused where they occur: duplicate and non-string
keys, aliases that expand without bound, nesting too deep, tabs, tags other than
text, numbers, booleans, null, mappings and lists, keys too long to show, and text
holding control characters, bidirectional controls or lone surrogates.

Merge keys (``<<``) are resolved here too, without changing the nodes merged (one
anchor may be merged in many places): a mapping's own keys win over merged ones,
and in ``<<: [*a, *b]`` an earlier mapping wins over a later one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from dspy_forge.spec.errors import Location, SpecError
from dspy_forge.spec.errors import Path as KeyPath

MAX_BYTES = 1_000_000
MAX_NODES = 100_000  # nodes visited, aliases counted each time they are expanded
MAX_DEPTH = 50
MAX_KEY_CHARS = 200  # longer than any key a spec knows; a longer one could not be shown
# Bidirectional controls: text holding one displays in another order than it is read
# ("Trojan Source"), in an editor, a terminal or a generated file.
BIDI_CONTROLS = "".join(
    chr(code) for code in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
)
# Characters refused in any text: C0/C1 controls other than tab and newline, bidi
# controls, and lone surrogates (which cannot be written to a file as UTF-8).
BAD_CHARACTER = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}\ud800-\udfff]")
# What a message never shows raw: those, and every line break (one error is one line).
UNSHOWN_CHARACTER = re.compile(rf"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}\u2028\u2029\ud800-\udfff]")
MERGE_TAG = "tag:yaml.org,2002:merge"
MAP_TAG = "tag:yaml.org,2002:map"
VALUE_TAG = "tag:yaml.org,2002:value"  # the key '=', which PyYAML reads as text
# The only YAML types a spec holds; any other tag (!!python/..., !!binary, a date) is refused.
ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("map", "seq", "str", "int", "float", "bool", "null")
)
_INVALID = object()  # stands for a refused value; never reaches validation
_Entries = list[tuple[str, yaml.Node, yaml.Node]]  # key, key node, value node


@dataclass
class Parsed:
    """A YAML document as data, where each key path is, and what was refused."""

    data: dict[str, Any] | None
    locations: dict[KeyPath, Location] = field(default_factory=dict)
    errors: list[SpecError] = field(default_factory=list)
    broken: list[KeyPath] = field(default_factory=list)  # values left out of ``data``
    # What to add to an "unknown key" error at a path: a key that is likely the end of
    # the value before it, cut off by a comma in a {...} mapping.
    notes: dict[KeyPath, str] = field(default_factory=dict)


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
        self.resolved: dict[int, _Entries] = {}  # by id(): nodes live as long as the reader

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
        """Keys and values, merged ones included; a key of the mapping's own wins."""
        result: dict[str, Any] = {}
        for key, key_node, value_node in self.entries(node, path, ()):
            self.parsed.locations[(*path, key)] = _location(key_node)
            result[key] = self.read(value_node, (*path, key), depth + 1)
        return result

    def entries(self, node: yaml.MappingNode, path: KeyPath, merging: tuple[int, ...]) -> _Entries:
        """The entries of a mapping as YAML reads them, merges resolved; once per node.

        Merged keys come first, in the order of the merged mappings, then the
        mapping's own new keys; a key's value is its own, else the first merged
        mapping's that has it. The nodes are never changed: an anchor may be merged
        in several places, and read on its own too.
        """
        done = self.resolved.get(id(node))
        if done is not None:
            return done
        if len(merging) > MAX_DEPTH:
            message = f"merges are nested more than {MAX_DEPTH} levels deep; refusing it"
            raise _Refused(SpecError(path, message, _location(node)))
        own, merges = self.own_entries(node, path)
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for source in merges:
            for mapping in self.merge_sources(source, path):
                if id(mapping) == id(node) or id(mapping) in merging:
                    message = "this mapping merges itself (through an alias)"
                    self.parsed.errors.append(SpecError((*path, "<<"), message, _location(source)))
                    self.parsed.broken.append(path)
                    continue
                for key, key_node, value_node in self.entries(mapping, path, (*merging, id(node))):
                    merged.setdefault(key, (key_node, value_node))
        mine = {key: (key_node, value_node) for key, key_node, value_node in own}
        result = [(key, *mine.pop(key, pair)) for key, pair in merged.items()]
        result += [(key, *pair) for key, pair in mine.items()]
        self.resolved[id(node)] = result
        return result

    def own_entries(
        self, node: yaml.MappingNode, path: KeyPath
    ) -> tuple[_Entries, list[yaml.Node]]:
        """A mapping's own keys (each once) and the values of its ``<<`` key."""
        entries: _Entries = []
        merges: list[yaml.Node] = []
        seen: set[str] = set()
        run: tuple[str, yaml.Node] | None = None  # the last key with a plain value, for hints
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                if merges:
                    message = (
                        "duplicate key '<<'; merge several mappings with one list: <<: [*a, *b]"
                    )
                    self.refuse((*path, "<<"), message, key_node, broken=False)
                else:
                    merges.append(value_node)
                continue
            if key_node.tag == VALUE_TAG:  # '=' is a key like any other here
                key_node = yaml.ScalarNode(
                    "tag:yaml.org,2002:str", key_node.value, key_node.start_mark, key_node.end_mark
                )
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in seen:
                # The first value stays and is checked; only the repeat is an error.
                message = f"duplicate key {key!r}; each key may appear once"
                self.parsed.errors.append(SpecError((*path, key), message, _location(key_node)))
                continue
            seen.add(key)
            entries.append((key, key_node, value_node))
            if _bare(key_node, value_node):
                if node.flow_style and run is not None:
                    self.parsed.notes[(*path, key)] = _comma_note(key, run, key_node)
            elif isinstance(value_node, yaml.ScalarNode) and value_node.style is None:
                run = (key, value_node)
            else:
                run = None
        return entries, merges

    def merge_sources(self, node: yaml.Node, path: KeyPath) -> list[yaml.MappingNode]:
        """The mappings a ``<<`` key merges: one mapping, or a list of them."""
        listed = isinstance(node, yaml.SequenceNode) and node.tag in ALLOWED_TAGS
        items = list(node.value) if listed else [node]
        bad = next(
            (i for i in items if not (isinstance(i, yaml.MappingNode) and i.tag == MAP_TAG)), None
        )
        if bad is None:
            return items
        if bad.tag not in ALLOWED_TAGS or isinstance(bad, yaml.MappingNode):
            what = "a value tagged " + bad.tag.replace("tag:yaml.org,2002:", "!!")
        else:
            what = "a list" if isinstance(bad, yaml.SequenceNode) else "a single value"
        message = (
            "'<<' merges a mapping or a list of mappings (<<: *base or <<: [*a, *b]), found "
            f"{'a list holding ' if listed else ''}{what}"
        )
        # The mapping is left unchecked: without its merge, it would miss keys.
        self.parsed.errors.append(SpecError((*path, "<<"), message, _location(node)))
        self.parsed.broken.append(path)
        return []

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
        if len(key) > MAX_KEY_CHARS:
            message = (
                f"a key of {len(key):,} characters; a key has at most {MAX_KEY_CHARS} characters"
            )
            self.refuse(path, message, node, broken=False)
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
            where = f"U+{ord(char):04X}, at index {bad.start()}"
            if char in BIDI_CONTROLS:
                return refuse(
                    f"text holds a bidirectional control character, {where}; it makes text "
                    "display in another order than it is read (Trojan Source): remove it"
                )
            kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
            return refuse(
                f"text holds {kind}, {where}; "
                "only tab and newline are allowed besides printable characters"
            )
        return refuse(f"expected text, a number, true/false or null, found {shown(value)}")


def _bare(key_node: yaml.Node, value_node: yaml.Node) -> bool:
    """A plain key with no value at all, as ``the id`` in ``{a: e.g. 'x', the id}``."""
    return (
        isinstance(key_node, yaml.ScalarNode)
        and key_node.style is None
        and isinstance(value_node, yaml.ScalarNode)
        and value_node.value == ""
        and value_node.start_mark.index == value_node.end_mark.index
    )


def _comma_note(key: str, run: tuple[str, yaml.Node], key_node: yaml.Node) -> str:
    """How to quote the value that a comma cut short, so that ``key`` is part of it again."""
    previous, value_node = run
    note = (
        f"; a comma ends a value inside {{...}}: if {key!r} belongs to {previous!r}, "
        "quote the value"
    )
    buffer = value_node.start_mark.buffer
    if buffer is None:
        return note
    text = buffer[value_node.start_mark.index : key_node.end_mark.index]
    if "\n" in text:
        text = " ".join(text.split())
    if len(text) > 100 or UNSHOWN_CHARACTER.search(text):
        return note
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{note}: {previous}: {quoted}"


def escaped(text: str) -> str:
    """``text`` for a message: characters that could hide or reorder text shown as escapes."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        code = ord(char)
        if char in "\t\n\r":
            return repr(char)[1:-1]
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return UNSHOWN_CHARACTER.sub(escape, text)


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
