"""Read a spec file into a validated :class:`ServiceModel`, with located errors.

YAML is composed into nodes with PyYAML's safe loader and turned into plain data
here, so that every value keeps the line and column it came from, duplicate keys
and non-string keys are refused, and aliases cannot expand without bound.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dspy_forge.errors import Location, SpecError, SpecInvalid
from dspy_forge.errors import Path as KeyPath
from dspy_forge.model import ServiceModel, build_model
from dspy_forge.spec import Spec

MAX_BYTES = 1_000_000
MAX_NODES = 100_000  # nodes visited, aliases counted each time they are expanded


@dataclass(frozen=True)
class LoadedSpec:
    """A spec that passed every check, with what it was read from."""

    spec: Spec
    model: ServiceModel
    path: Path | None


class _Reader:
    """Turns a composed YAML node tree into data and a path -> location map."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.locations: dict[KeyPath, Location] = {}
        self.errors: list[SpecError] = []
        self.visited = 0

    def read(self, node: yaml.Node, path: KeyPath) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise _TooLarge(path, node)
        self.locations.setdefault(path, _location(node))
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            self.loader.flatten_mapping(node)  # resolve YAML merge keys (<<)
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node)
                if not isinstance(key, str):
                    self.errors.append(
                        SpecError(path, f"keys must be strings, found {key!r}", _location(key_node))
                    )
                    continue
                if key in result:
                    self.errors.append(
                        SpecError((*path, key), f"duplicate key {key!r}", _location(key_node))
                    )
                    continue
                self.locations[(*path, key)] = _location(key_node)
                result[key] = self.read(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node)


class _TooLarge(Exception):
    def __init__(self, path: KeyPath, node: yaml.Node) -> None:
        self.error = SpecError(
            path,
            f"the document expands to more than {MAX_NODES} values (aliases?); refusing it",
            _location(node),
        )


def _location(node: yaml.Node) -> Location:
    return Location(node.start_mark.line + 1, node.start_mark.column + 1)


def parse_yaml(text: str) -> tuple[Any, dict[KeyPath, Location], list[SpecError]]:
    """Parse YAML text into data, the location of every key path, and the errors found."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return None, {}, [SpecError((), f"the file is larger than {MAX_BYTES} bytes")]
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}, [SpecError((), "the document is empty", Location(1, 1))]
        reader = _Reader(loader)
        data = reader.read(root, ())
    except _TooLarge as exc:
        return None, {}, [exc.error]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(mark.line + 1, mark.column + 1) if mark else None
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return None, {}, [SpecError((), f"invalid YAML: {message}", location)]
    except yaml.YAMLError as exc:
        return None, {}, [SpecError((), f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = type(data).__name__
        return (
            None,
            {},
            [SpecError((), f"the document must be a mapping, found {kind}", _location(root))],
        )
    return data, reader.locations, reader.errors


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
    from dspy_forge import spec as s

    model: Any = Spec
    for part in path:
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is not None:
            annotation = field.annotation
        elif isinstance(model, tuple) and model[0] == "map":
            annotation = model[1]
        else:
            return None
        model = _unwrap(annotation, s)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any, s: Any) -> Any:
    import typing

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


def _pydantic_errors(exc: ValidationError, data: Any) -> list[SpecError]:
    errors = []
    for item in exc.errors(include_url=False):
        path = _data_path(item["loc"], data)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            key = path[-1] if path else ""
            parent = _model_at(path[:-1])
            known = list(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            expected = f" (expected one of: {', '.join(known)})" if known and not close else ""
            message = f"unknown key {key!r}{hint}{expected}"
        elif item["type"] == "missing":
            path = _data_path(item["loc"][:-1], data)
            message = f"missing required key {item['loc'][-1]!r}"
        elif "input" in item and not isinstance(item["input"], dict | list):
            message = f"{message}, found {item['input']!r}"
        errors.append(SpecError(path, message))
    return errors


def _locate(
    errors: list[SpecError], locations: dict[KeyPath, Location], file: str | None
) -> list[SpecError]:
    located = []
    for error in errors:
        path = error.path
        location = error.location
        while location is None and path:
            location = locations.get(path)
            path = path[:-1]
        if location is None:
            location = locations.get(())
        located.append(replace(error, location=location, file=file))
    return located


def load_spec_text(
    text: str, *, file: str | None = None, base_dir: Path | None = None
) -> LoadedSpec:
    """Validate spec text; raise :class:`SpecInvalid` with every located problem."""
    data, locations, errors = parse_yaml(text)
    if data is None or errors:
        raise SpecInvalid(_locate(errors, locations, file))
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecInvalid(_locate(_pydantic_errors(exc, data), locations, file)) from None
    model, errors = build_model(spec, base_dir)
    if model is None:
        raise SpecInvalid(_locate(errors, locations, file))
    return LoadedSpec(spec=spec, model=model, path=None)


def load_spec(path: Path) -> LoadedSpec:
    """Read and validate the spec file at ``path``."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecInvalid(
                [SpecError((), f"the file is larger than {MAX_BYTES} bytes", file=str(path))]
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecInvalid([SpecError((), "no such file", file=str(path))]) from None
    except IsADirectoryError:
        raise SpecInvalid(
            [SpecError((), "is a directory, not a spec file", file=str(path))]
        ) from None
    except UnicodeDecodeError as exc:
        raise SpecInvalid(
            [SpecError((), f"not UTF-8 text ({exc.reason})", file=str(path))]
        ) from None
    loaded = load_spec_text(text, file=str(path), base_dir=path.parent)
    return replace(loaded, path=path)
