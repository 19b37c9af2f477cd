"""The benchmark's chart: throughput per mode, and latency percentiles per rate and mode."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def draw(report: dict, path: Path) -> None:
    modes = report["modes"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(modes)
    rates = [modes[m]["throughput"]["per_second"] for m in names]
    bars = left.bar(names, rates, color=["#2b7bba", "#c0504d", "#9bbb59"][: len(names)])
    left.bar_label(bars, labels=[f"{r:,.0f}/s" for r in rates])
    left.set_title("Throughput, end to end (answers per second)")
    left.tick_params(axis="x", rotation=45, labelsize=7)
    left.set_ylabel("answers / s")

    width = 0.8 / max(1, len(names))
    latency_rates = sorted({int(r) for m in names for r in modes[m].get("latency", {})})
    for index, mode in enumerate(names):
        p50 = [modes[mode]["latency"].get(str(r), {}).get("p50") or 0 for r in latency_rates]
        p99 = [modes[mode]["latency"].get(str(r), {}).get("p99") or 0 for r in latency_rates]
        positions = [i + index * width for i in range(len(latency_rates))]
        right.bar(positions, p99, width, label=f"{mode} p99", alpha=0.45)
        right.bar(positions, p50, width, label=f"{mode} p50")
    right.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(latency_rates))])
    right.set_xticklabels([f"{r}/s" for r in latency_rates])
    right.set_yscale("log")
    right.set_ylabel("latency (ms, log scale)")
    right.set_title("Latency at fixed request rates")
    right.legend(fontsize=7, ncol=2)
    machine = report.get("machine", {})
    figure.suptitle(f"{machine.get('cpus', '?')} cores, {machine.get('cpu_model', '')}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
