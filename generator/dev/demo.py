"""``dspy-forge demo``: a generated service on the built-in fake LM, in the foreground.

Notes:
1. The demo folder is the demo's own: it writes a marker, ``.dspy-forge-demo.json``,
   that lists every file it wrote with its hash. It only ever replaces a folder
   that carries the marker and holds exactly those files (and Python's bytecode
   caches); a folder with anything else, a ``.git``, a file added, edited or
   deleted, a link, is refused and left as it is. The new demo is generated
   beside the old one first, so a failure leaves the old one as it was.
2. The demo's port is bound here, before anything is generated or printed
   (:func:`dspy_forge.dev.devserver.listening_socket`), and the service serves on
   that very socket: a port in use is an error with a non-zero exit, never a
   curl line that reaches some other server.
3. Its two servers are children that end with it: SIGTERM, SIGINT and SIGHUP
   raise :class:`Stopped` here, so that the ``with`` blocks stop them; and on
   Linux the kernel kills them should this process die without cleaning up
   (``die_with_parent``, see :mod:`dspy_forge.dev.devserver`, note 2).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.markup import escape

from dspy_forge import __version__
from dspy_forge.dev.devserver import (
    fake_lm_env,
    listening_socket,
    serving,
    socket_command,
    socket_url,
)
from dspy_forge.render.cleanup import removed_on_failure
from dspy_forge.render.generate import generate
from dspy_forge.service.model import ServiceModel
from dspy_forge.spec.loader import LoadedSpec

MARKER = ".dspy-forge-demo.json"
MADE_BY = "dspy-forge demo"
HOST = "127.0.0.1"
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


class DemoError(Exception):
    """The demo cannot run; the message says why and what to do."""


class Stopped(BaseException):
    """A signal asked the demo to stop (note 3); a BaseException, like KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Turn the first SIGTERM, SIGINT or SIGHUP into :class:`Stopped` (note 3).

    Later ones are ignored, so that stopping the servers is not cut short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stopped(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# --- the folder (note 1) -------------------------------------------------------------


def check_folder(out: Path) -> bool:
    """Whether ``out`` is a demo folder to replace; False for a new or empty one; else refuse."""
    if not out.exists() and not out.is_symlink():
        return False
    if out.is_symlink() or not out.is_dir():
        raise DemoError(
            f"{out} exists and is not a folder; it was left as it is. Choose another --out."
        )
    if not any(out.iterdir()):
        return False
    _foreign(out)
    return True


def _refusal(out: Path, why: str) -> DemoError:
    return DemoError(
        f"{out} {why}; it was left as it is. Choose another --out (a new or empty folder), "
        f"or, if you do not need what is in it, delete it yourself and run the demo again. "
        f"To keep working on a project, use dspy-forge generate SPEC --out {out}."
    )


def _manifest(out: Path) -> dict[str, object]:
    marker = out / MARKER
    if marker.is_symlink() or not marker.is_file():
        raise _refusal(out, f"exists and is not a folder made by {MADE_BY} (it has no {MARKER})")
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if (
        not isinstance(data, dict)
        or data.get("made_by") != MADE_BY
        or not isinstance(data.get("files"), dict)
        or not isinstance(data.get("folders"), list)
    ):
        raise _refusal(
            out, f"exists and is not a folder made by {MADE_BY} ({MARKER} is unreadable)"
        )
    return data


def _foreign(out: Path) -> None:
    """Refuse ``out`` unless it holds exactly what the demo wrote there (note 1)."""
    manifest = _manifest(out)
    files: dict[str, str] = dict(manifest["files"])  # type: ignore[arg-type]
    folders = set(manifest["folders"])  # type: ignore[arg-type]
    found: list[str] = []
    seen: set[str] = set()
    for path, kind in _walk(out):
        name = path.relative_to(out).as_posix()
        if kind == "link":
            found.append(f"{name} (a link)")
        elif kind == "folder":
            if name not in folders and not _cache(name, folder=True):
                found.append(f"{name}/ (added)")
        elif name == MARKER or _cache(name, folder=False):
            continue
        elif name not in files:
            found.append(f"{name} (added)")
        else:
            seen.add(name)
            if _digest(path) != files[name]:
                found.append(f"{name} (changed)")
    found += [f"{name} (deleted)" for name in sorted(set(files) - seen)]
    if found:
        listed = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
        raise _refusal(
            out,
            f"is a demo folder: {MADE_BY} made it, but it now holds changes of yours ({listed})",
        )


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """Every entry under ``root``, never following links; an unknown folder is not entered."""
    for entry in sorted(root.iterdir()):
        if entry.is_symlink():
            yield entry, "link"
        elif entry.is_dir():
            yield entry, "folder"
            yield from _walk(entry)
        elif entry.is_file():
            yield entry, "file"
        else:
            yield entry, "link"  # a socket, a fifo: nothing the demo writes


def _cache(name: str, *, folder: bool) -> bool:
    """Python's bytecode caches, which serving the demo writes."""
    parts = name.split("/")
    if folder:
        return parts[-1] == "__pycache__"
    return len(parts) > 1 and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mark(out: Path) -> None:
    files, folders = {}, []
    for path, kind in _walk(out):
        name = path.relative_to(out).as_posix()
        if kind == "folder":
            folders.append(name)
        elif kind == "file":
            files[name] = _digest(path)
    marker = {"made_by": MADE_BY, "dspy_forge": __version__, "files": files, "folders": folders}
    (out / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def write_demo(loaded: LoadedSpec, out: Path, *, replace: bool) -> None:
    """Generate ``loaded`` into ``out`` and mark it; ``replace`` its demo there (note 1)."""
    if not replace:
        with removed_on_failure(out):
            generate(loaded, out)
            _mark(out)
        return
    out = out.absolute()
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.dspy-forge-", dir=out.parent))
    new, old = staging / "new", staging / "old"
    try:
        generate(loaded, new)
        _mark(new)
        out.rename(old)  # atomic: from here on nothing can add to it unseen
        try:
            _foreign(old)
            new.rename(out)
        except BaseException:
            old.rename(out)
            raise
        _remove_demo(old)
    finally:
        shutil.rmtree(new, ignore_errors=True)  # generated in this run, if still there
        with contextlib.suppress(OSError):
            staging.rmdir()  # left, with what is in it, should anything remain


def _remove_demo(folder: Path) -> None:
    """Delete what the demo wrote in ``folder`` (just checked), then the folder if empty."""
    files = set(_manifest(folder)["files"])  # type: ignore[arg-type]
    for root, _dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = Path(root, name)
            relative = path.relative_to(folder).as_posix()
            if relative in files or relative == MARKER or _cache(relative, folder=False):
                path.unlink()
        with contextlib.suppress(OSError):
            Path(root).rmdir()


# --- serving (notes 2 and 3) ---------------------------------------------------------


def listen(port: int, host: str = HOST) -> socket.socket:
    """The demo's listening socket, or a :class:`DemoError` that says what to do (note 2)."""
    try:
        return listening_socket(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DemoError(
                f"cannot serve the demo: {host}:{port} is in use (another server listens "
                "there, perhaps an earlier demo). Stop it, or choose another port, e.g. "
                f"--port {port + 1 if 0 < port < 65535 else 8010}. Nothing was generated "
                "or started."
            ) from None
        raise DemoError(
            f"cannot serve the demo on {host}:{port}: {exc.strerror or exc}. Choose another "
            "port with --port. Nothing was generated or started."
        ) from None


def run_demo(
    model: ServiceModel,
    project: Path,
    *,
    listener: socket.socket,
    scenario: str,
    console: Console,
    startup_timeout: float = 120.0,
) -> int:
    """Serve ``project`` on ``listener`` with a fake LM beside it until stopped; the exit code.

    Returns 0 when a signal stopped it (:class:`Stopped` from
    :func:`stopping_on_signals`); raises :class:`DemoError` when a server fails.
    """
    url = socket_url(listener)
    own_lm = [p.name for p in model.programs if p.lm is not None]
    fake_socket = listen(0)
    fake_url = socket_url(fake_socket)
    fake_command = [
        sys.executable, "-m", "dspy_forge.dev.fakelm",
        "--fd", str(fake_socket.fileno()), "--scenario", scenario,
    ]  # fmt: skip
    env = {
        "PYTHONPATH": str(project.resolve() / "src"),
        **fake_lm_env(f"{fake_url}/v1", own_lm),
    }
    try:
        with (
            serving(
                fake_command,
                fake_url,
                cwd=project,
                env={},
                health_path="/_fake/stats",
                sockets=[fake_socket],
                die_with_parent=True,
                startup_timeout=startup_timeout,
                name="the fake LM",
            ) as fake,
            serving(
                socket_command(f"{model.package}.main:app", listener.fileno()),
                url,
                cwd=project,
                env=env,
                sockets=[listener],
                die_with_parent=True,
                startup_timeout=startup_timeout,
            ) as service,
        ):
            _print_ready(model, url, f"{fake_url}/v1", console)
            return _wait(service.process, fake.process)
    except Stopped:
        return 0
    except RuntimeError as exc:  # a server that did not start
        raise DemoError(f"{exc}; its output is above") from None
    finally:
        fake_socket.close()


def _print_ready(model: ServiceModel, url: str, api_base: str, console: Console) -> None:
    program = model.programs[0]
    inputs = {f.name: f.type.sample for f in program.signature.inputs}
    if inputs and program.signature.inputs[0].type.annotation == "str":
        inputs[program.signature.inputs[0].name] = "What is DSPy?"
    console.print(
        f"fake LM at {api_base}; service at {url} (API docs at {url}/docs)", highlight=False
    )
    if model.server.playground:
        console.print(f"open the playground in a browser: {url}/playground", highlight=False)
    console.print("or try, in another terminal:")
    console.print(
        escape(
            f"  curl -N -X POST {url}/v1/{program.name}/stream "
            f"-H 'content-type: application/json' -d '{json.dumps(inputs)}'"
        ),
        highlight=False,
        soft_wrap=True,
    )
    console.print("stop with Ctrl-C")


def _wait(service: subprocess.Popen[bytes], fake: subprocess.Popen[bytes]) -> int:
    """Until a server ends: the service's own end is its exit code, the fake LM's an error."""
    while True:
        code = service.poll()
        if code is not None:
            if code != 0:
                raise DemoError(f"the service exited with status {code}; its output is above")
            return 0
        if fake.poll() is not None:
            raise DemoError(f"the fake LM exited with status {fake.returncode}")
        time.sleep(0.2)
