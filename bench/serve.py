"""Start ``hirondelle serve`` for a benchmark: one place for how the benchmarks run the
server they measure (a subprocess, as in production, with its own data directory)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HIRONDELLE = Path(sys.executable).parent / "hirondelle"


def start_serve(data: Path, listener: str) -> tuple[subprocess.Popen[str], int]:
    """Run ``hirondelle --data DATA serve`` and wait for its first ``listening NAME
    HOST:PORT`` line; ``listener`` is a regular expression for NAME (``imaps?``,
    ``lmtp``, ``https``). The environment's ``HIRONDELLE_*`` overrides are left out, so
    the data directory's configuration alone decides. Returns the process and the port;
    a server that does not start is stopped and reported."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HIRONDELLE_")}
    process = subprocess.Popen(
        [str(HIRONDELLE), "--data", str(data), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.match(rf"^listening {listener} \S+:(\d+)$", line.strip())
    if match is None:
        process.terminate()
        process.wait(timeout=30)
        raise RuntimeError(f"hirondelle serve did not start: {line!r}")
    return process, int(match.group(1))
