"""Generate docs/configuration.md from the configuration schema in hirondelle.config.

Usage: ``python scripts/gen_config_docs.py`` rewrites the page; ``--check`` only reports
(exit status 1) whether the committed page differs from what the schema produces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hirondelle.config import config_reference_markdown

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the configuration reference page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the page is out of date")
    arguments = parser.parse_args(argv)
    expected = config_reference_markdown()
    current = DOCS_PAGE.read_text(encoding="utf-8") if DOCS_PAGE.exists() else None
    if arguments.check:
        if current != expected:
            print(f"{DOCS_PAGE} is out of date; run python scripts/gen_config_docs.py")
            return 1
        return 0
    if current != expected:
        DOCS_PAGE.write_text(expected, encoding="utf-8")
        print(f"wrote {DOCS_PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
