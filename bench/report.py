"""The suite's results as Markdown tables and a matplotlib plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SERVER_NAMES = {
    "service": "generated service",
    "baseline": "hand-written baseline",
    "floor": "floor (no DSPy)",
    "inprocess": "in-process streamify",
}


def _n(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _headline(levels: list[str]) -> str:
    return "50" if "50" in levels else levels[-1]


def markdown(results: dict[str, Any]) -> str:
    """Every table of docs/benchmarks.md, from one results document."""
    config = results["config"]
    programs = config["programs"]
    servers = config["servers"]
    parts: list[str] = []
    m = results.get("machine", {})
    if m:
        packages = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())
        parts.append(
            f"Machine: {m['nproc']} cores, {m['cpu_model']}; Python {m['python']}; {packages}; "
            f"git {m['git']}; {m['date']}; load average (1 min) "
            f"{_n(m.get('load_average_start', [None])[0], digits=2)} at the start, "
            f"{_n(m.get('load_average_end', [None])[0], digits=2)} at the end."
            f"\n\nCommand: `{m['command']}` "
            f"(setting `{config['name']}`, {config['runs']} runs; total "
            f"{_n(results.get('timings_s', {}).get('total'), 1, 0)} s)."
        )

    cpu = results.get("cpu")
    inproc = results.get("inprocess", {})
    if cpu:
        med = cpu["median"]
        levels = [str(c) for c in config["concurrency"]]
        header = "| program | server | " + " | ".join(f"c={c}" for c in levels) + " |"
        lines = [
            f"**Server CPU per completed stream** (ms; median of {config['runs']} runs; "
            f"x = ratio to the baseline in the same run, median; fake LM `{cpu['scenario']}`)",
            "",
            header,
            "|---|---|" + "---|" * len(levels),
        ]
        for program in programs:
            for server in servers:
                cells = []
                for c in levels:
                    f = med[server][program][c]
                    cell = _n(f["cpu_ms_per_stream"], digits=2)
                    if server != "baseline" and f.get("cpu_ratio_to_baseline") is not None:
                        cell += f" ({_ratio(f['cpu_ratio_to_baseline'])})"
                    cells.append(cell)
                lines.append(f"| {program} | {SERVER_NAMES[server]} | " + " | ".join(cells) + " |")
            if program in inproc:
                cells = [
                    _n(inproc[program].get(c, {}).get("cpu_ms_per_stream"), digits=2)
                    for c in levels
                ]
                lines.append(
                    f"| {program} | {SERVER_NAMES['inprocess']} (no server) | "
                    + " | ".join(cells)
                    + " |"
                )
        http_only = cpu.get("http_only", {})
        if any(v is not None for v in http_only.values()):
            lines.append(
                "| - | HTTP + SSE alone (floor's echo: 23 events, no LM) | "
                + " | ".join(_n(http_only.get(c), digits=2) for c in levels)
                + " |"
            )
        parts.append("\n".join(lines))

        layered = [
            p for p in programs if inproc.get(p, {}).get(_headline(levels), {}).get("layers")
        ]
        if layered:
            head = _headline(levels)
            lines = [
                f"**Where the service's CPU goes** (ms per stream at c={head}; each row adds one "
                "layer of the generated service around the same program, run in one process "
                "without HTTP, then the service itself)",
                "",
                "| program | `dspy.streamify` | + `ServedProgram.events` | + `Runs.stream` | "
                "service over HTTP | HTTP + SSE alone |",
                "|---|---|---|---|---|---|",
            ]
            for program in layered:
                layers = inproc[program][head]["layers"]
                service = (
                    med["service"][program][head]["cpu_ms_per_stream"] if "service" in med else None
                )
                lines.append(
                    f"| {program} | {_n(layers.get('streamify'), digits=2)} | "
                    f"{_n(layers.get('events'), digits=2)} | {_n(layers.get('runs'), digits=2)} | "
                    f"{_n(service, digits=2)} | {_n(http_only.get(head), digits=2)} |"
                )
            parts.append("\n".join(lines))

        lines = [
            "**Tokens delivered per stream** (median of runs; expected: what the same program "
            "streams in-process with fresh listeners; first request: the server's very first "
            "stream after start-up)",
            "",
            "| program | server | first request | "
            + " | ".join(f"c={c}" for c in levels)
            + " | expected | streams whose tokens = final answer |",
            "|---|---|---|" + "---|" * len(levels) + "---|---|",
        ]
        for program in programs:
            expected = inproc.get(program, {}).get(levels[-1], {}).get("tokens_per_stream")
            for server in servers:
                first = cpu["first_request"].get(server, {}).get(program, {}).get("tokens")
                cells = [_n(med[server][program][c]["tokens_per_stream"]) for c in levels]
                matches = [
                    (
                        med[server][program][c]["text_matches_final"],
                        med[server][program][c]["streams_with_final"],
                    )
                    for c in levels
                ]
                match_text = (
                    "-"
                    if not any(total for _, total in matches)
                    else ", ".join(f"{_n(a, digits=0)}/{_n(b, digits=0)}" for a, b in matches)
                )
                lines.append(
                    f"| {program} | {SERVER_NAMES[server]} | {_n(first, digits=0)} | "
                    + " | ".join(cells)
                    + f" | {_n(expected)} | {match_text} |"
                )
        errors = [
            f"{server} {program} c={c}: {med[server][program][c]['errors']:.0f}"
            for server in servers
            for program in programs
            for c in levels
            if med[server][program][c]["errors"]
        ]
        lines += ["", "Errors (median per run): " + ("; ".join(errors) if errors else "none.")]
        parts.append("\n".join(lines))

    ttft = results.get("ttft")
    if ttft:
        med = ttft["median"]
        levels = [str(c) for c in config["ttft_streams"]]
        lines = [
            f"**Time to first token** (ms, p50 / p99; median of {config['runs']} runs; fake LM "
            f'`{ttft["scenario"]}`; "over LM" = minus the fake LM\'s own p50 time to the first '
            "chunk of the same field, read directly at the same concurrency; a stream with no "
            "token counts its final answer as its first output)",
            "",
            "| program | server | "
            + " | ".join(f"c={c} p50 / p99 | c={c} p50 over LM" for c in levels)
            + " |",
            "|---|---|" + "---|---|" * len(levels),
        ]
        for program in programs:
            for server in (*servers, "inprocess", "lm"):
                if server not in med:  # results of a run before the in-process reference
                    continue
                cells = []
                for c in levels:
                    f = med[server][program][c]
                    lm = med["lm"][program][c]["ttft_p50_s"]
                    cells.append(f"{_n(f['ttft_p50_s'], 1000)} / {_n(f['ttft_p99_s'], 1000)}")
                    over = (
                        None
                        if server == "lm" or f["ttft_p50_s"] is None or lm is None
                        else f["ttft_p50_s"] - lm
                    )
                    cells.append("-" if server == "lm" else f"+{_n(over, 1000)}")
                name = {
                    "lm": "fake LM, read directly",
                    "inprocess": "in-process `streamify`, no server",
                }.get(server) or SERVER_NAMES[server]
                lines.append(f"| {program} | {name} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))

    capacity = results.get("capacity")
    if capacity:
        lines = [
            f"**Streams held open together** (qa; fresh server per level; ramp "
            f"{capacity['ramp_per_s']:.0f} streams/s; each stream waits for its first token "
            f"until the ramp is over, then gets one every {capacity['pace_ms']} ms; held = no "
            f"error, every stream got tokens, none got its first token more than 1 s after the LM "
            f"sent it, and p99 gap between tokens < {1000 * capacity['gap_limit_s']:.0f} ms; "
            "LM streams = most upstream streams open at once, from the fake LM)",
            "",
            "| server | streams | completed | errors | LM streams "
            "| first token p50 / p99 (s), late "
            "| gap p50 / p99 / max (ms) | RSS per idle stream (KiB) "
            "| CPU use: server / fake LM / client | held |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for server, levels in capacity["levels"].items():
            for level, f in sorted(levels.items(), key=lambda item: int(item[0])):
                use = f["cpu_utilisation"]
                kinds = ", ".join(f"{k}: {v}" for k, v in f["error_kinds"].items())
                lines.append(
                    f"| {SERVER_NAMES[server]} | {level} | {f['completed']} | {f['errors']}"
                    + (f" ({kinds})" if kinds else "")
                    + f" | {f.get('upstream_open_max')}"
                    + f" | {_n(f['first_token_p50_s'], digits=2)}"
                    + f" / {_n(f['first_token_p99_s'], digits=2)}, "
                    + f"{f.get('late_first_tokens')}"
                    + f" | {_n(f['gap_p50_s'], 1000)} / {_n(f['gap_p99_s'], 1000)}"
                    + f" / {_n(f['gap_max_s'], 1000)}"
                    + f" | {_n(f['rss_kib_per_idle_stream'])}"
                    + f" | {use['server']:.0%} / {use['fake_lm']:.0%} / {use['client']:.0%}"
                    + f" | {'yes' if f['held'] else 'no'} |"
                )
        held = ", ".join(
            f"{SERVER_NAMES[s]}: {v if v is not None else 'none of the levels'}"
            for s, v in capacity["max_held"].items()
        )
        lines += ["", f"Largest level held: {held}."]
        parts.append("\n".join(lines))

    gen = results.get("generation")
    if gen:
        lines = [
            f"**Generation** (wall time of the `dspy-forge` script in a fresh process, median of "
            f"{config['gen_runs']}; cold start median of {config['cold_runs']})",
            "",
            "| what | seconds | lines of Python generated |",
            "|---|---|---|",
            f"| `dspy-forge --help` (cold start) | {gen['cold_start']['median']:.2f} | |",
            f"| `dspy-forge validate specs/qa.yaml` | {gen['validate']['median']:.2f} | |",
        ]
        for size, f in sorted(gen["generate"].items(), key=lambda item: int(item[0])):
            lines.append(f"| `generate`, {size} program(s) | {f['median']:.2f} | {f['lines']} |")
        fit = gen["fit"]
        if fit["slope"] is not None:
            steps = ", ".join(
                f"{step['from']}→{step['to']}: {step['ms']:.1f} ms"
                for step in fit.get("marginal_ms_per_program", [])
            )
            lines += [
                "",
                f"Cost of each added program: {steps}. "
                f"Least-squares line: {fit['intercept']:.2f} s + "
                f"{1000 * fit['slope']:.1f} ms per program (R² = {fit['r2']:.3f}).",
            ]
        parts.append("\n".join(lines))

    if results.get("startup"):
        from bench import startup

        parts.append(startup.table(results["startup"]))
    for counted in results.get("instructions", {}).values():
        from bench import instructions

        parts.append("**Instructions per stream** (callgrind), " + instructions.table(counted))
    for ab in results.get("ab", {}).values():
        from bench import ab as ab_module

        parts.append("**CPU per stream, variants side by side** (pinned), " + ab_module.table(ab))
    if results.get("pool"):
        from bench import pool

        parts.append(
            "**1,000 streams in flight** (the service pinned to its own core), "
            + pool.table(results["pool"]["rows"], results["pool"]["load_average"])
        )

    found = results.get("targets")
    if found:
        lines = ["**Targets**", "", "| target | figure | met |", "|---|---|---|"]
        for name, t in found.items():
            if "figure" in t:
                figure = t["figure"]
            elif name.startswith("cpu_half"):
                figure = (
                    f"service/baseline CPU at c={t['concurrency']}: {_ratio(t['ratio'])}; tokens "
                    f"{_n(t['tokens_per_stream'])} of "
                    f"{_n(t['expected_tokens_per_stream'])} expected"
                )
            elif name.startswith("service_layer"):
                figure = (
                    f"{_n(t['service_ms'], digits=2)} ms vs {_n(t['inprocess_ms'], digits=2)} ms "
                    f"in-process at c={t['concurrency']}: +{100 * t['overhead']:.0f}%"
                )
            elif name == "open_streams":
                figure = (
                    f"{t['streams']} streams: {t['completed']} completed, {t['errors']} errors; "
                    f"at most {t.get('upstream_open_max')} LM streams at once, "
                    f"{t.get('late_first_tokens')} "
                    "streams waited for one"
                )
            else:
                steps = ", ".join(f"{ms:.1f}" for ms in t["marginal_ms_per_program"])
                figure = (
                    f"{t['programs']} programs in {t['seconds']:.2f} s; ms per added program: "
                    f"{steps} ({'at most linear' if t['at_most_linear'] else 'faster than linear'})"
                )
            lines.append(f"| {name} | {figure} | {'yes' if t['met'] else '**no**'} |")
        parts.append("\n".join(lines))

    if results.get("runlog"):
        from bench.runlog import markdown as runlog_markdown

        parts.append(runlog_markdown(results["runlog"]).rstrip("\n"))
    return "\n\n".join(parts) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """CPU per stream and p99 time to first token against concurrency; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    config = results["config"]
    programs = config["programs"]
    cpu = results.get("cpu", {}).get("median", {})
    ttft = results.get("ttft", {}).get("median", {})
    inproc = results.get("inprocess", {})
    styles = {
        "service": ("tab:blue", "o"),
        "baseline": ("tab:red", "s"),
        "floor": ("tab:green", "^"),
        "inprocess": ("tab:gray", "x"),
        "lm": ("black", "."),
    }
    figure, axes = plt.subplots(len(programs), 2, figsize=(11, 4.2 * len(programs)), squeeze=False)
    for row, program in enumerate(programs):
        left, right = axes[row]
        for server in config["servers"]:
            if server in cpu:
                levels = sorted(cpu[server][program], key=int)
                xs = [int(c) for c in levels]
                ys = [cpu[server][program][c]["cpu_ms_per_stream"] for c in levels]
                color, marker = styles[server]
                left.plot(xs, ys, marker=marker, color=color, label=SERVER_NAMES[server])
            if server in ttft:
                levels = sorted(ttft[server][program], key=int)
                xs = [int(c) for c in levels]
                ys = [_ms(ttft[server][program][c]["ttft_p99_s"]) for c in levels]
                color, marker = styles[server]
                right.plot(xs, ys, marker=marker, color=color, label=SERVER_NAMES[server])
        if program in inproc:
            levels = sorted((k for k in inproc[program] if k.isdigit()), key=int)
            color, marker = styles["inprocess"]
            left.plot(
                [int(c) for c in levels],
                [inproc[program][c]["cpu_ms_per_stream"] for c in levels],
                marker=marker,
                linestyle="--",
                color=color,
                label=SERVER_NAMES["inprocess"],
            )
        if "lm" in ttft:
            levels = sorted(ttft["lm"][program], key=int)
            color, marker = styles["lm"]
            right.plot(
                [int(c) for c in levels],
                [_ms(ttft["lm"][program][c]["ttft_p99_s"]) for c in levels],
                marker=marker,
                linestyle=":",
                color=color,
                label="fake LM's own first chunk",
            )
        left.set_xscale("log")
        left.set_ylim(bottom=0)
        left.set_title(
            f"{program}: server CPU per completed stream\n(fake LM {results['cpu']['scenario']})"
            if "cpu" in results
            else program,
            fontsize=10,
        )
        left.set_xlabel("concurrent streams")
        left.set_ylabel("CPU ms per stream")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_title(
            f"{program}: p99 time to first token\n(fake LM {results['ttft']['scenario']})"
            if "ttft" in results
            else program,
            fontsize=10,
        )
        right.set_xlabel("concurrent streams")
        right.set_ylabel("ms (log scale)")
        for axis in (left, right):
            axis.grid(True, which="both", alpha=0.3)
            axis.legend(fontsize=8)
    machine = results.get("machine", {})
    figure.suptitle(
        f"dspy-forge benchmarks: {machine.get('nproc')} cores, {machine.get('cpu_model')}, "
        f"dspy {machine.get('packages', {}).get('dspy')}",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _ms(value: float | None) -> float | None:
    return None if value is None else 1000 * value
