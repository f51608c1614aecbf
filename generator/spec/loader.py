"""Validate a spec file into a :class:`ServiceModel`, with every problem located.

The YAML is read by :mod:`dspy_forge.spec.yamldoc`. One run reports as much as it can
find: the shape of the whole document is checked by pydantic, and when parts of
it are wrong, the parts that are right are still resolved against each other
(see :func:`_salvage`), so that a misspelt key in one program does not hide a
missing tool in another.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dspy_forge.service.build import build_model
from dspy_forge.service.model import ServiceModel
from dspy_forge.spec.contract import Spec
from dspy_forge.spec.errors import Location, SpecError, SpecInvalid
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.migrations import migrate_spec_data
from dspy_forge.spec.shape_errors import Broken, shape_error
from dspy_forge.spec.yamldoc import MAX_BYTES, parse_yaml

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


def _check_shape(
    data: dict[str, Any], notes: dict[KeyPath, str]
) -> tuple[Spec | None, list[SpecError], list[Broken]]:
    """Pydantic's errors as spec errors; an unknown key gets the reader's note, if any."""
    try:
        return Spec.model_validate(data), [], []
    except ValidationError as exc:
        pairs = [shape_error(item, data) for item in exc.errors(include_url=False)]
        errors = [
            replace(error, message=error.message + notes[error.path])
            if broken.unknown_key and error.path in notes
            else error
            for error, broken in pairs
        ]
        return None, errors, [broken for _, broken in pairs]


def _salvage(
    data: dict[str, Any], broken: list[Broken]
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
            broken = [shape_error(item, pruned)[1] for item in exc.errors(include_url=False)]
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
            (error.path, error.message, error.location, error.file),
            replace(error, location=location, file=error.file or file),
        )
    return list(located.values())


def _check(
    data: dict[str, Any], broken: list[KeyPath], notes: dict[KeyPath, str], base_dir: Path | None
) -> tuple[list[SpecError], Spec | None, ServiceModel | None]:
    """Shape and cross-reference errors of parsed data; the spec and model when valid.

    ``broken`` lists the values the YAML reader refused (their errors are its own).
    """
    spec, shape_errors, shape_broken = _check_shape(data, notes)
    errors = [error for error in shape_errors if not _under(error.path, broken)]
    model = None
    if spec is not None and not broken:
        model, cross_errors = build_model(spec, base_dir)
        errors += cross_errors
    elif (salvaged := _salvage(data, [*map(Broken, broken), *shape_broken])) is not None:
        partial, unchecked, replaced = salvaged
        _, cross_errors = build_model(partial, base_dir, unchecked=unchecked)
        errors += [e for e in cross_errors if not (e.path and e.path[0] in replaced)]
    return errors, spec, model


# Named sections whose entries can be checked under a stand-in name when theirs is refused.
NAMED_SECTIONS = ("signatures", "tools", "programs")
STAND_IN = "forge_stand_in_"


def _behind_refused_names(
    data: dict[str, Any],
    errors: list[SpecError],
    broken: list[KeyPath],
    notes: dict[KeyPath, str],
    base_dir: Path | None,
) -> list[SpecError]:
    """Errors that refused names hide, found by checking again under stand-in names.

    A signature, tool or program whose name is refused (by its shape, as a keyword
    or private name, or as a clash) is left out of the checks of what it holds and
    of what refers to it. So such entries are renamed to valid stand-ins, with the
    references to them, and checked once more (a few times, if that finds more
    refused names); the errors found inside them and inside the programs that
    refer to them are returned under their own names.
    """
    taken = {
        str(name)
        for section in NAMED_SECTIONS
        if isinstance(data.get(section), dict)
        for name in data[section]
    }
    stand_ins: dict[tuple[str, str], str] = {}
    result: list[SpecError] = []
    for _ in range(3):
        refused = _refused_entries(data, [*errors, *result]) - set(stand_ins)
        if not refused:
            break
        for entry in sorted(refused):
            stand_in = next(
                f"{STAND_IN}{n}" for n in range(1, len(taken) + 2) if f"{STAND_IN}{n}" not in taken
            )
            taken.add(stand_in)
            stand_ins[entry] = stand_in
        result += _checked_under_stand_ins(data, stand_ins, broken, notes, base_dir)
    return result


def _refused_entries(data: dict[str, Any], errors: list[SpecError]) -> set[tuple[str, str]]:
    """The entries of named sections that have an error about themselves, their names."""
    found = set()
    for error in errors:
        if len(error.path) == 2 and error.path[0] in NAMED_SECTIONS:
            section, name = str(error.path[0]), str(error.path[1])
            entries = data.get(section)
            if isinstance(entries, dict) and name in entries:
                found.add((section, name))
    return found


def _checked_under_stand_ins(
    data: dict[str, Any],
    stand_ins: dict[tuple[str, str], str],
    broken: list[KeyPath],
    notes: dict[KeyPath, str],
    base_dir: Path | None,
) -> list[SpecError]:
    """The errors of ``data`` with entries renamed, inside what the renaming lets be checked."""
    renamed = dict(data)
    for section in NAMED_SECTIONS:
        if isinstance(data.get(section), dict):
            renamed[section] = {
                stand_ins.get((section, str(name)), name): value
                for name, value in data[section].items()
            }
    referring: set[str] = set()
    programs = renamed.get("programs")
    if isinstance(programs, dict):
        renamed["programs"] = {
            name: _with_references(name, program, stand_ins, referring)
            for name, program in programs.items()
        }
    back = {stand_in: name for (_, name), stand_in in stand_ins.items()}

    def forth(path: KeyPath) -> KeyPath:
        if len(path) >= 2 and (str(path[0]), str(path[1])) in stand_ins:
            return (path[0], stand_ins[(str(path[0]), str(path[1]))], *path[2:])
        return path

    found, _, _ = _check(
        renamed, [forth(path) for path in broken], {forth(k): v for k, v in notes.items()}, base_dir
    )
    result = []
    for error in found:
        path = error.path
        if len(path) < 2:
            continue
        entry = str(path[1])
        if entry in back:
            if len(path) == 2:
                continue  # about the stand-in's name
        elif not (path[0] == "programs" and entry in referring):
            continue  # outside what the renaming lets be checked: reported already
        message = error.message
        for stand_in, name in back.items():
            message = message.replace(stand_in, name)
        original = (path[0], back.get(entry, path[1]), *path[2:])
        result.append(replace(error, path=original, message=message))
    return result


def _with_references(
    name: str, program: Any, stand_ins: dict[tuple[str, str], str], referring: set[str]
) -> Any:
    """A program referring to stand-ins instead of the refused names they replace."""
    if not isinstance(program, dict):
        return program
    changed = dict(program)
    signature = program.get("signature")
    if isinstance(signature, str) and ("signatures", signature) in stand_ins:
        changed["signature"] = stand_ins[("signatures", signature)]
    tools = program.get("tools")
    if isinstance(tools, list):
        changed["tools"] = [
            stand_ins.get(("tools", tool), tool) if isinstance(tool, str) else tool
            for tool in tools
        ]
    if changed != program:
        referring.add(name)
    return changed


def load_spec_text(
    text: str, *, file: str | None = None, base_dir: Path | None = None
) -> LoadedSpec:
    """Validate spec text; raise :class:`SpecInvalid` with every located problem."""
    parsed = parse_yaml(text)
    data = parsed.data
    if data is None:
        raise SpecInvalid(_locate(parsed.errors, parsed.locations, file))
    data = migrate_spec_data(data, file=file)  # an older format, read as the current one
    found, spec, model = _check(data, parsed.broken, parsed.notes, base_dir)
    errors = [*parsed.errors, *found]
    errors += _behind_refused_names(data, errors, parsed.broken, parsed.notes, base_dir)
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
