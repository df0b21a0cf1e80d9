"""How a benchmark runs its measurement: in a scratch directory removed afterwards, with the
report optionally kept as JSON (one place for what bench.store, bench.jmap and bench.web
did alike)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

Report = dict[str, Any]


def run_in_scratch(name: str, run: Callable[[Path], Coroutine[Any, Any, Report]]) -> Report:
    """Run ``run(work)`` on a fresh event loop; ``work`` is deleted whatever happens."""
    work = Path(tempfile.mkdtemp(prefix=f"hirondelle-bench-{name}-"))
    try:
        return asyncio.run(run(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def save_report(report: Report, path: Path | None) -> None:
    """Write the report as JSON when a path was given (``--json``)."""
    if path is not None:
        path.write_text(json.dumps(report, indent=2) + "\n")
