"""Read a spec file into a validated :class:`ServiceModel`, with located errors.

YAML is composed into nodes with PyYAML's safe loader and turned into plain data
here, so that every value keeps the line and column it came from, and YAML's
hazards are refused where they occur: duplicate and non-string keys, aliases that
expand without bound, nesting too deep, tabs, values that are not text, numbers,
booleans or null, and text holding control characters or lone surrogates.

One run reports as much as it can find. The shape of the whole document is
checked by pydantic; when parts of it are wrong, the parts that are right are
still resolved against each other (see :func:`_salvage`), so that a misspelt key
in one program does not hide a missing tool in another.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dspy_forge.errors import Location, SpecError, SpecInvalid
from dspy_forge.errors import Path as KeyPath
from dspy_forge.hints import closest, suggest
from dspy_forge.migrations import migrate_spec_data
from dspy_forge.model import ServiceModel, build_model
from dspy_forge.spec import Spec

MAX_BYTES = 1_000_000
MAX_NODES = 100_000  # nodes visited, aliases counted each time they are expanded
MAX_DEPTH = 50
# Characters refused in any text: C0/C1 controls other than tab and newline, and lone
# surrogates (which cannot be written to a file as UTF-8).
BAD_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# The only YAML types a spec holds; any other tag (!!python/..., !!binary, a date) is refused.
ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("map", "seq", "str", "int", "float", "bool", "null")
)
# What each pattern of the spec means, to say what was expected in words.
PATTERNS: dict[str, str] = {
    r"^[A-Za-z_][A-Za-z0-9_]*$": "a name of ASCII letters, digits and '_', not starting "
    "with a digit (it becomes a Python name and a URL segment)",
    r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$": "a lower-case name such as 'my-service': "
    "letters and digits, words joined by single '-' or '_'",
    r"^[^\n\r\x85\u2028\u2029]*$": "one line of text, without line breaks",
    r"^[0-9]+(\.[0-9]+){0,2}([ab]|rc)?[0-9]*$": "a version such as '1.2.0' or '1.0rc1'",
    r"^[A-Z_][A-Z0-9_]*$": "an environment variable name such as 'OPENAI_API_KEY'",
    r"^https?://\S+$": "an http:// or https:// URL without spaces",
    r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$": "'module:function' "
    "within the package, such as 'tools.search:search'",
    r"^[A-Za-z_][A-Za-z0-9_.]*$": "a predictor name such as 'react' or 'extract.predict'",
    r"^(\*|https?://[A-Za-z0-9.\-\[\]:]+)$": "'*' or an origin such as 'https://app.example.com'",
    r"^(\*|[A-Za-z0-9-]{1,64})$": "'*' or an HTTP header name such as 'X-API-Key'",
    r"^/[A-Za-z0-9_./-]{0,200}$": "a URL path such as '/healthz'",
}
# Stand-ins for required sections that failed their shape checks, so that the rest
# can still be cross-checked; errors found inside them are never shown.
PLACEHOLDERS: dict[str, Any] = {
    "version": 1,
    "service": {"name": "placeholder"},
    "lm": {"model": "placeholder"},
}
_ONE_PROGRAM = {"placeholder": {"module": "Predict", "signature": "a -> b"}}


@dataclass(frozen=True)
class LoadedSpec:
    """A spec that passed every check, with what it was read from."""

    spec: Spec
    model: ServiceModel
    path: Path | None


@dataclass
class _Parsed:
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
        self.parsed = _Parsed(data=None)
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
        result: dict[str, Any] = {}
        self.loader.flatten_mapping(node)  # resolve YAML merge keys (<<)
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in result:
                # The first value stays and is checked; only the repeat is an error.
                message = f"duplicate key {key!r}; each key may appear once"
                self.parsed.errors.append(SpecError((*path, key), message, _location(key_node)))
                continue
            self.parsed.locations[(*path, key)] = _location(key_node)
            result[key] = self.read(value_node, (*path, key), depth + 1)
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
            self.refuse(path, f"keys must be text, found {_shown(key)}{hint}", node, broken=False)
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
        except (ValueError, OverflowError) as exc:
            return refuse(f"cannot read this value ({str(exc).split(';')[0]})")
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
        return refuse(f"expected text, a number, true/false or null, found {_shown(value)}")


_INVALID = object()  # stands for a refused value; never reaches validation


def _location(node: yaml.Node) -> Location:
    return Location(node.start_mark.line + 1, node.start_mark.column + 1)


def _shown(value: Any) -> str:
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


def parse_yaml(text: str) -> _Parsed:
    """Parse YAML text into data, the location of every key path, and what was refused."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return _Parsed(None, errors=[SpecError((), f"the file is larger than {MAX_BYTES} bytes")])
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
        if root is None:
            return _Parsed(None, errors=[SpecError((), "the document is empty", Location(1, 1))])
        reader = _Reader(loader)
        data = reader.read(root, ())
    except _Refused as exc:
        return _Parsed(None, errors=[exc.error])
    except yaml.reader.ReaderError as exc:
        message = (
            f"the file holds the character U+{exc.character:04X}, which YAML refuses "
            "(write it as an escape in a double-quoted string)"
        )
        return _Parsed(None, errors=[SpecError((), message, _position(text, exc.position))])
    except yaml.MarkedYAMLError as exc:
        return _Parsed(None, errors=[_yaml_error(exc)])
    except yaml.YAMLError as exc:
        return _Parsed(None, errors=[SpecError((), f"invalid YAML: {exc}")])
    except RecursionError:
        return _Parsed(None, errors=[SpecError((), "values are nested too deeply; refusing it")])
    finally:
        if loader is not None:
            loader.dispose()
    parsed = reader.parsed
    if not isinstance(data, dict):
        found = "nothing" if data is _INVALID else _shown(data)
        message = f"the document must be a mapping of keys (version, service, ...), found {found}"
        return _Parsed(None, errors=[*parsed.errors, SpecError((), message, _location(root))])
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


def _data_path(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """Keep the parts of a pydantic error location that name keys in the data."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            current = current[part]
        else:
            continue  # a union branch or validator name, not a key
        path.append(part)
    return tuple(path)


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    """The spec model that validates the mapping at ``path``, for did-you-mean hints."""
    model: Any = Spec
    for part in path:
        found = model.model_fields.get(part) if isinstance(model, type) else None
        if found is not None:
            annotation = found.annotation
        elif isinstance(model, tuple) and model[0] == "map":
            annotation = model[1]
        else:
            return None
        model = _unwrap(annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict:
        return ("map", args[1])
    if origin is list:
        return ("map", args[0])
    if args and origin is not typing.Literal:
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else annotation
    return annotation


@dataclass(frozen=True)
class _Broken:
    """A value that failed its shape check; an unknown key can be dropped on its own."""

    path: KeyPath
    unknown_key: bool = False


def _shape_error(item: Any, data: Any) -> tuple[SpecError, _Broken]:
    """A pydantic error as a spec error, and the value it makes unusable."""
    path = _data_path(item["loc"], data)
    kind = item["type"]
    found = item.get("input")
    if kind == "missing":
        path = _data_path(item["loc"][:-1], data)
        key = item["loc"][-1]
        return SpecError(path, f"missing required key {key!r}"), _Broken((*path, key))
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else ""
        parent = _model_at(path[:-1])
        known = list(parent.model_fields) if parent else []
        return SpecError(path, f"unknown key {key!r}" + suggest(key, known)), _Broken(path, True)
    elif kind == "string_pattern_mismatch":
        pattern = item["ctx"]["pattern"]
        expected = PATTERNS.get(pattern, f"text matching {pattern}")
        message = f"expected {expected}, found {_shown(found)}"
    elif kind == "literal_error":
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", item["ctx"]["expected"])
        message = f"expected one of {item['ctx']['expected']}, found {_shown(found)}"
        guess = closest(found, choices) if isinstance(found, str) else None
        if guess is not None:
            message += f"; did you mean {guess!r}?"
    else:
        message = f"{item['msg']}, found {_shown(found)}" if "input" in item else item["msg"]
    return SpecError(path, message), _Broken(path)


def _check_shape(data: dict[str, Any]) -> tuple[Spec | None, list[SpecError], list[_Broken]]:
    try:
        return Spec.model_validate(data), [], []
    except ValidationError as exc:
        pairs = [_shape_error(item, data) for item in exc.errors(include_url=False)]
        return None, [error for error, _ in pairs], [broken for _, broken in pairs]


def _salvage(
    data: dict[str, Any], broken: list[_Broken]
) -> tuple[Spec, dict[str, frozenset[str]], frozenset[str]] | None:
    """The parts of a document that passed the shape checks, as a spec to cross-check.

    An unknown key is dropped; any other broken entry of a named section (a
    signature, tool or program) is left out and its name returned as unchecked,
    so that references to it are not reported as missing. A broken optional
    section takes its default, and a broken required one a placeholder, whose
    names are returned so that its errors can be dropped. Returns None when
    nothing useful is left.
    """
    pruned = dict(data)
    unchecked: dict[str, set[str]] = {}
    replaced: set[str] = set()
    for _ in range(3):  # dropping parts never breaks others; a retry is only a safeguard
        for item in broken:
            path = item.path
            if item.unknown_key and len(path) > 1:
                pruned = _without(pruned, path)  # the rest of its mapping stays checked
                continue
            if not path:
                return None
            head = str(path[0])
            declared = Spec.model_fields.get(head)
            if declared is None:
                pruned.pop(head, None)
            elif typing.get_origin(declared.annotation) is dict:
                section = pruned.get(head)
                if len(path) > 1 and isinstance(section, dict):
                    pruned[head] = {k: v for k, v in section.items() if k != path[1]}
                    unchecked.setdefault(head, set()).add(str(path[1]))
                else:
                    pruned[head] = {}
            elif not declared.is_required():
                pruned.pop(head, None)
            elif head in PLACEHOLDERS:
                pruned[head] = PLACEHOLDERS[head]
                replaced.add(head)
            else:
                return None
        # With every program broken, signatures and tools are still worth checking.
        programs = pruned.get("programs") or _ONE_PROGRAM
        try:
            spec = Spec.model_validate({**pruned, "programs": programs})
        except ValidationError as exc:
            broken = [_shape_error(item, pruned)[1] for item in exc.errors(include_url=False)]
            continue
        if programs is _ONE_PROGRAM:
            spec = spec.model_copy(update={"programs": {}})
        return spec, {k: frozenset(v) for k, v in unchecked.items()}, frozenset(replaced)
    return None


def _without(data: Any, path: KeyPath) -> Any:
    """A copy of ``data`` without the key at ``path``, copying only what is on the way."""
    head, *rest = path
    if isinstance(data, dict) and head in data:
        if not rest:
            return {k: v for k, v in data.items() if k != head}
        return {**data, head: _without(data[head], tuple(rest))}
    if isinstance(data, list) and isinstance(head, int) and 0 <= head < len(data) and rest:
        return [_without(v, tuple(rest)) if i == head else v for i, v in enumerate(data)]
    return data


def _under(path: KeyPath, prefixes: list[KeyPath]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in prefixes)


def _locate(
    errors: list[SpecError], locations: dict[KeyPath, Location], file: str | None
) -> list[SpecError]:
    located: dict[tuple[KeyPath, str], SpecError] = {}
    for error in errors:
        path = error.path
        location = error.location
        while location is None and path:
            location = locations.get(path)
            path = path[:-1]
        if location is None:
            location = locations.get(())
        located.setdefault(
            (error.path, error.message), replace(error, location=location, file=file)
        )
    return list(located.values())


def load_spec_text(
    text: str, *, file: str | None = None, base_dir: Path | None = None
) -> LoadedSpec:
    """Validate spec text; raise :class:`SpecInvalid` with every located problem."""
    parsed = parse_yaml(text)
    data = parsed.data
    if data is None:
        raise SpecInvalid(_locate(parsed.errors, parsed.locations, file))
    data = migrate_spec_data(data, file=file)  # an older format, read as the current one
    spec, shape_errors, shape_broken = _check_shape(data)
    errors = [
        *parsed.errors,
        *(error for error in shape_errors if not _under(error.path, parsed.broken)),
    ]
    model = None
    if spec is not None and not parsed.broken:
        model, cross_errors = build_model(spec, base_dir)
        errors += cross_errors
    elif (salvaged := _salvage(data, [*map(_Broken, parsed.broken), *shape_broken])) is not None:
        partial, unchecked, replaced = salvaged
        _, cross_errors = build_model(partial, base_dir, unchecked=unchecked)
        errors += [e for e in cross_errors if not (e.path and e.path[0] in replaced)]
    if errors or spec is None or model is None:
        raise SpecInvalid(_locate(errors, parsed.locations, file))
    return LoadedSpec(spec=spec, model=model, path=None)


def load_spec(path: Path) -> LoadedSpec:
    """Read and validate the spec file at ``path``."""
    try:
        if path.is_dir():
            raise SpecInvalid([SpecError((), "is a directory, not a spec file", file=str(path))])
        if path.stat().st_size > MAX_BYTES:
            message = f"the file is larger than {MAX_BYTES} bytes"
            raise SpecInvalid([SpecError((), message, file=str(path))])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecInvalid([SpecError((), "no such file", file=str(path))]) from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise SpecInvalid([SpecError((), message, file=str(path))]) from None
    except OSError as exc:
        message = f"cannot read it ({exc.strerror or exc})"
        raise SpecInvalid([SpecError((), message, file=str(path))]) from None
    loaded = load_spec_text(text, file=str(path), base_dir=path.parent)
    return replace(loaded, path=path)
