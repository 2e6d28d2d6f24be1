"""A job consumer with every thread under cProfile, for `bench/webhook.py --profile`.

    python bench/consumer_profiled.py <folder> --workers 2 --no-periodic

Runs `flask --app app jobs consume` with the arguments after the folder. Each
thread the consumer starts (its workers, its scheduler) gets a profiler of its
own; the main thread, which imports the app and then waits, is left out. When
the process exits (SIGTERM stops a consumer at once, and it exits normally),
their figures are merged into `<folder>/consumer-<pid>.prof`.
"""

from __future__ import annotations

import atexit
import cProfile
import os
import pstats
import sys
import threading
from typing import Any

_profilers: list[cProfile.Profile] = []
_lock = threading.Lock()


def _start_profiling(*_: Any) -> None:
    """The first profile event of a new thread: from now on, its own profiler takes over."""
    profiler = cProfile.Profile()
    with _lock:
        _profilers.append(profiler)
    profiler.enable()


def _dump(path: str) -> None:
    with _lock:
        profilers = list(_profilers)
    merged: pstats.Stats | None = None
    for profiler in profilers:
        try:
            stats = pstats.Stats(profiler)
        except TypeError:  # a thread that never ran any Python code
            continue
        if merged is None:
            merged = stats
        else:
            merged.add(stats)
    if merged is not None:
        merged.dump_stats(path)


def main() -> None:
    folder, rest = sys.argv[1], sys.argv[2:]
    atexit.register(_dump, os.path.join(folder, f"consumer-{os.getpid()}.prof"))
    threading.setprofile(_start_profiling)

    from flask.cli import main as flask_main

    sys.argv = ["flask", "--app", "app", "jobs", "consume", *rest]
    flask_main()


if __name__ == "__main__":
    main()
