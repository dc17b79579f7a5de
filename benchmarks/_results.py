"""Where benchmark numbers go: ``benchmarks/results/<name>.json``, with what is needed to trust them.

Every number the README quotes comes from one of these files. Each records the numbers, the
configuration that produced them, package versions, the git revision, the CPU model and thread count,
and the load average before and after the run (a number measured on a busy machine says so).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from linvae._atomic import atomic_write
from linvae.figures.runner import git_revision, jsonable, versions

RESULTS = Path(__file__).resolve().parent / "results"


def time_chunk_twice(chunk, state, data):
    """Run ``state, _ = chunk(state, data)`` twice, synchronised: ``(state, first_s, second_s)``.

    The first call compiles; the second is the steady state a benchmark reports.
    """
    import time

    import jax

    times = []
    for _ in range(2):
        t = time.perf_counter()
        state, _ = chunk(state, data)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t)
    return state, times[0], times[1]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def write_result(name: str, numbers: dict[str, Any], config: dict[str, Any], load_before) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically and return its path."""
    record = {
        "benchmark": name,
        "numbers": numbers,
        "config": config,
        "machine": machine(),
        "load_average_before": load_before,
        "versions": versions(),
        "git": git_revision(),
    }
    path = RESULTS / f"{name}.json"
    text = json.dumps(jsonable(record), indent=1, allow_nan=False)
    atomic_write(path, lambda fh: fh.write(text + "\n"), mode="w")
    return path
