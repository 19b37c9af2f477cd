"""Print the latest benchmark results (benchmarks/results/latest.json) as the README's Markdown table."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def latency_cell(figures: dict) -> str:
    if figures.get("saturated"):
        return "saturated"
    return f"{figures['p50']:.0f} / {figures['p95']:.0f} / {figures['p99']:.0f}"


def main() -> None:
    report = json.loads(RESULTS.read_text())
    modes = report["modes"]
    rates = sorted({int(rate) for mode in modes.values() for rate in mode.get("latency", {})})
    header = ["mode", "throughput (answers/s)"] + [f"latency at {rate}/s, p50 / p95 / p99 ms" for rate in rates]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for name, mode in modes.items():
        cells = [name, f"{mode['throughput']['per_second']:,.0f}"]
        cells += [latency_cell(mode["latency"].get(str(rate), {"saturated": True})) for rate in rates]
        print("| " + " | ".join(cells) + " |")
    print()
    for key in ("predictor_vs_original", "predictor_vs_echo_pct"):
        if key in report:
            print(f"- {key}: {report[key]}")
    predictor = modes.get("predictor", {})
    if "hot_swap" in predictor:
        print(f"- hot swap: {json.dumps(predictor['hot_swap'])}")
    if "memory" in predictor:
        print(f"- memory: {json.dumps(predictor['memory'])}")


if __name__ == "__main__":
    main()
