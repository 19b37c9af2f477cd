"""Figures measured by integration tests (recoveries, repeats), appended to logs/test_figures.jsonl
so a run can be reported; assertions stay in the tests."""

import json
import time
from pathlib import Path

FIGURES = Path(__file__).resolve().parents[2] / "logs" / "test_figures.jsonl"


def record_figures(name: str, figures: dict) -> None:
    FIGURES.parent.mkdir(exist_ok=True)
    with FIGURES.open("a") as handle:
        handle.write(json.dumps({"test": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}) + "\n")
