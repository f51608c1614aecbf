"""Check that a saved program state fits the program that will load it.

A generated service loads ``program.save()`` JSON at start-up with
``module.load(path)``. DSPy pairs saved fields with the signature's by position
and silently ignores a count mismatch, and it fails only at start-up on a file
of another shape; so the spec is refused here, with what the file holds.

The file is copied into the generated project, so it must be in the spec's folder
or below it: a path that is absolute, or leads out through ``..`` or a symlink, is
refused before anything outside is opened, with one message whether or not such
a file exists, so that a spec cannot be used to probe or copy files elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from dspy_forge.service.anatomy import predictors

MAX_STATE_BYTES = 50_000_000
ABSOLUTE = (
    "an absolute path; name a saved state relative to the spec, as a file in the spec's "
    "folder or below it"
)
OUTSIDE = (
    "the path leads outside the spec's folder (through '..' or a symlink); a saved state "
    "must be a file in that folder or below it"
)


def state_file(text: str, base_dir: Path | None) -> tuple[Path, Path] | str:
    """The file a program's ``state`` names (resolved, and as shown), or why it is refused.

    Relative to ``base_dir``, the spec's folder (the working directory when None).
    Nothing outside the folder is opened or tested: every such path gets the same
    message, whether it exists or not.
    """
    written = Path(text)
    if written.is_absolute():
        return ABSOLUTE
    shown = written if base_dir is None else base_dir / written
    try:
        folder = (base_dir or Path.cwd()).resolve()
        source = (folder / written).resolve()  # follows every symlink on the way
    except (OSError, RuntimeError):  # a symlink loop: treated as leading anywhere
        return OUTSIDE
    if not source.is_relative_to(folder):
        return OUTSIDE
    if not source.is_file():
        return f"no such file: {shown}"
    return source, shown


def state_problem(
    path: Path,
    module: str,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    *,
    shown: Path | None = None,
    inner: str | None = None,
) -> str | None:
    """What is wrong with the state file at ``path`` for this program, or None.

    ``path`` is a file that :func:`state_file` accepted; messages name it as ``shown``.
    ``inner`` is the module a BestOfN tries (its predictors are that module's).
    """
    read = path
    path = shown or path
    try:
        if read.stat().st_size > MAX_STATE_BYTES:
            return f"{path} is larger than {MAX_STATE_BYTES} bytes"
        data = json.loads(read.read_bytes())
    except RecursionError:  # json decodes nested arrays and objects recursively
        return f"{path} is nested too deeply to be JSON saved by program.save()"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"{path} is not JSON saved by program.save() ({exc})"
    if not isinstance(data, dict):
        return f"{path} holds a JSON {type(data).__name__}, not the object program.save() writes"
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("dependency_versions"), dict):
        return f"{path} has no metadata.dependency_versions, which module.load() reads"
    expected = {
        name: (*ins, *outs)
        for name, (ins, outs) in predictors(module, inputs, outputs, inner).items()
    }
    # A Predict saves its own state at the top level; other modules, one entry per predictor.
    saved = {"self": data} if module == "Predict" else data
    found = (
        ["self"]
        if "signature" in data
        else sorted(k for k, v in data.items() if isinstance(v, dict) and "signature" in v)
    )
    for name, fields in expected.items():
        state = saved.get(name)
        signature = state.get("signature") if isinstance(state, dict) else None
        saved_fields = signature.get("fields") if isinstance(signature, dict) else None
        if not isinstance(saved_fields, list):
            held = ", ".join(found) or "no predictor state"
            return (
                f"{path} has no saved signature for predictor {name!r} of a {module} "
                f"(it holds: {held}); was it saved from another module?"
            )
        if len(saved_fields) != len(fields):
            return (
                f"{path}: predictor {name!r} was saved with {len(saved_fields)} fields, "
                f"but this program's has {len(fields)} ({', '.join(fields)}); "
                "was it saved from another signature?"
            )
    return None
