"""What a bench writes: its report as bench/results/<name>.json and <name>.md, and the cells of its
markdown tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, report: Any, markdown: str) -> None:
    """bench/results/<name>.json (the report, indented) and bench/results/<name>.md (`markdown`)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)


def cell(v: Any, *, none: str = "-", no: str = "no", small: str = ",.3f") -> str:
    """A figure as a table cell: None as `none`, booleans as yes / `no`, numbers with thousands
    separators (a float under 10 in the `small` format, one decimal above), a list's items joined by " / "."""
    if isinstance(v, list):
        return " / ".join(cell(x, none=none, no=no, small=small) for x in v)
    if v is None:
        return none
    if isinstance(v, bool):
        return "yes" if v else no
    if isinstance(v, float):
        return format(v, small) if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)
