"""Where a server's CPU goes: py-spy samples, summarised by layer, file and function.

``python -m bench profile [--server service] [--program qa] [--concurrency 50]`` serves one
program on the fake LM, samples it with ``py-spy record --nonblocking`` while the load client
runs streams against it, and prints:

- the share of samples by layer (the generated package, DSPy, FastAPI/Starlette, uvicorn,
  anyio/asyncio, pydantic, httpx, ...), by where the sample's innermost frame is;
- the functions with the most inclusive time, in the generated package, DSPy and Starlette;
- the innermost (self) frames.

The raw collapsed stacks are kept (``--out``/profile-*.txt) for a flame graph.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# (layer, test on the frame's file path), first match wins.
GENERATED = "generated service (runtime/, routes)"

LAYERS: tuple[tuple[str, str], ...] = (
    (GENERATED, "qa_service/"),
    (GENERATED, "research_agent/"),
    ("bench apps", "bench/"),
    ("dspy streaming (streamify, listeners)", "dspy/streaming/"),
    ("dspy adapters (format, parse)", "dspy/adapters/"),
    ("dspy lm15 transport + engine", "dspy/_vendor/lm15/"),
    ("dspy clients (LM call, execution)", "dspy/clients/"),
    ("dspy callbacks/settings/other", "dspy/"),
    ("pydantic", "pydantic"),
    ("fastapi", "fastapi/"),
    ("starlette", "starlette/"),
    ("uvicorn + httptools", "uvicorn/"),
    ("anyio", "anyio/"),
    ("asyncio + uvloop", "asyncio/"),
    ("httpx/httpcore", "httpx/"),
    ("httpx/httpcore", "httpcore/"),
    ("json", "json/"),
    ("threads (thread pool, locks)", "threading.py"),
    ("threads (thread pool, locks)", "concurrent/futures/"),
    ("prometheus_client", "prometheus_client/"),
    ("h11", "h11/"),
)


@dataclass
class Profile:
    """Collapsed stacks: each a tuple of (function, file) frames, outermost first, and a count."""

    stacks: list[tuple[tuple[tuple[str, str], ...], int]]

    @classmethod
    def read(cls, path: Path) -> Profile:
        stacks = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            text, _, count = line.rpartition(" ")
            if not text or not count.isdigit():
                continue
            frames = []
            for raw in text.split(";"):
                match = _FRAME.match(raw.strip())
                frames.append((match["func"], match["file"]) if match else (raw, "?"))
            stacks.append((tuple(frames), int(count)))
        return cls(stacks)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.stacks)

    def by_layer(self) -> Counter[str]:
        """Samples by the layer of their innermost frame (self time per layer)."""
        layers: Counter[str] = Counter()
        for frames, count in self.stacks:
            layers[layer_of(frames[-1][1]) if frames else "?"] += count
        return layers

    def inclusive(self, where: str) -> Counter[str]:
        """Inclusive samples of each function whose file contains ``where``."""
        seen: Counter[str] = Counter()
        for frames, count in self.stacks:
            names = {f"{func} ({file})" for func, file in frames if where in file}
            for name in names:
                seen[name] += count
        return seen

    def self_time(self) -> Counter[str]:
        own: Counter[str] = Counter()
        for frames, count in self.stacks:
            if frames:
                func, file = frames[-1]
                own[f"{func} ({file})"] += count
        return own


def layer_of(file: str) -> str:
    for layer, needle in LAYERS:
        if needle in file:
            return layer
    return "other (stdlib, C)"


def report(profile: Profile, top: int = 15) -> str:
    """A plain-text summary of ``profile``."""
    total = max(1, profile.total)
    lines = [f"{profile.total} samples", "", "self time by layer:"]
    for layer, count in profile.by_layer().most_common():
        lines.append(f"  {100 * count / total:5.1f}%  {layer}")
    for title, where in (
        ("generated service, inclusive", "qa_service/"),
        ("generated service, inclusive", "research_agent/"),
        ("bench apps, inclusive", "bench/"),
        ("dspy, inclusive", "dspy/"),
        ("fastapi/starlette, inclusive", "starlette/"),
    ):
        found = profile.inclusive(where).most_common(top)
        if found:
            lines += ["", f"{title}:"]
        for name, count in found:
            lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines += ["", "self time, top functions:"]
    for name, count in profile.self_time().most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import argparse
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from bench import load
    from bench.proc import cpu_seconds
    from bench.servers import PROGRAMS, SERVERS, generate_project, inprocess, start
    from bench.suite import body, path_of, say
    from dspy_forge.dev.fakelm.testing import running_fake_lm

    parser = argparse.ArgumentParser(
        prog="python -m bench profile", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--server", choices=SERVERS, default="service")
    parser.add_argument("--program", choices=sorted(PROGRAMS), default="qa")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--scenario", default="delay-2ms")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args(argv)
    args.out = args.out.resolve()

    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        parser.error("py-spy is not installed (pip install -e '.[bench]')")
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"profile-{args.server}-{args.program}-c{args.concurrency}.txt"
    spec = PROGRAMS[args.program].spec
    with running_fake_lm() as fake, (args.out / "servers.log").open("wb") as log:
        project = generate_project(spec, args.out / "projects" / spec)
        prompts = {args.program: inprocess(project, args.program, fake.api_base, "capture")}
        prompts_file = args.out / "prompts.json"
        prompts_file.write_text(json.dumps(prompts), encoding="utf-8")
        api_base = fake.scenario_base(args.scenario)
        with start(args.server, args.program, api_base, {spec: project}, prompts_file, log) as srv:
            field_name = PROGRAMS[args.program].final_field
            load.run(load.closed_loop(srv.url, path_of(args.program), 20, 5, body, field_name))
            sampler = subprocess.Popen(
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(srv.pid),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ},
            )
            time.sleep(1.0)
            before = cpu_seconds(srv.pid)
            result = load.run(
                load.closed_loop(
                    srv.url, path_of(args.program), args.count, args.concurrency, body, field_name
                )
            )
            cpu = cpu_seconds(srv.pid) - before
            sampler.send_signal(signal.SIGINT)
            try:
                sampler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                sampler.kill()
                sampler.wait()
    say(
        f"{args.server} {args.program} c={args.concurrency}: {result.completed} streams, "
        f"{1000 * cpu / max(1, result.completed):.2f} ms CPU per stream (under the profiler)"
    )
    if not raw.exists():
        say(f"py-spy wrote nothing: {sampler.stderr.read().decode() if sampler.stderr else ''}")
        return 1
    print(report(Profile.read(raw), args.top))
    say(f"collapsed stacks in {raw}")
    return 0
