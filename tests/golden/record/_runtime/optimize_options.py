"""What ``python -m <package> optimize`` takes on its command line, without importing DSPy.

``__main__`` builds its parser from these before it knows the command, so that
serving does not load DSPy (and the optimizers) in a process that only starts
uvicorn's workers. ``optimize.py`` runs them (a test checks that its optimizers are these).
"""

NAMES = ("bootstrap-few-shot", "mipro-v2", "gepa")

# The settings a run may be given (``--num-trials``, ...): type and help. Each
# optimizer takes some of them and has its own defaults for those.
SETTINGS: dict[str, tuple[type, str]] = {
    "auto": (str, "MIPROv2's or GEPA's budget preset: light, medium or heavy."),
    "num_trials": (int, "MIPROv2: trials of the search (replaces auto)."),
    "num_candidates": (int, "MIPROv2: instruction candidates (replaces auto)."),
    "max_metric_calls": (int, "GEPA: metric calls in all (replaces auto)."),
    "max_bootstrapped_demos": (int, "Demos bootstrapped from traces that pass."),
    "max_labeled_demos": (int, "Demos taken as they are from the train examples."),
    "max_rounds": (int, "BootstrapFewShot: rounds of bootstrapping."),
    "seed": (int, "MIPROv2's or GEPA's random seed."),
}
