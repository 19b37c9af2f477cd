"""How the predictor's cost grows: answers/s, p50/p99 at a fixed rate and memory, one point per
run of the real predictor process against the real broker, along three axes:

  fields   the Adult form (14 fields) and synthetic forms of 50 and 200 fields (half numeric, half
           categorical), each with a 300-tree model
  trees    Adult with 100, 1,000 and 5,000 trees
  bytes    Adult requests padded to larger sizes (categories with trailing spaces, which the form
           strips: the same values, more bytes to read)

Models are trained with fixed rounds (no tuning: the tree count is the variable); each is served
on its compiled form, built before the point runs (the build time is reported).

    python -m benchmarks.cost_curves [--quick]

Writes benchmarks/results/cost-curves.json and cost-curves.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.loadgen import build_payloads, run_load
from benchmarks.pipeline import ROOT, describe_machine, rss_mib, start
from train.pipeline import fixed_rounds_files
from utils.cli import settings_from
from utils.data import TARGET, default_spec, frame_to_records, load_dataset
from utils.kafka.topics import ensure_topics
from utils.model_store import ModelStore, VersionMetadata
from utils.settings import KafkaSettings, Topics
from utils.spec import DataFile, DatasetSpec, Field, Label

RESULTS = ROOT / "benchmarks" / "results"
SYNTHETIC_ROWS = 20_000


def synthetic(fields: int, rows: int, seed: int = 0) -> tuple[DatasetSpec, pd.DataFrame]:
    """A form of `fields` fields and labelled rows whose label depends on a few of them."""
    rng = np.random.default_rng(seed)
    numeric, categorical = fields // 2, fields - fields // 2
    columns: dict[str, object] = {}
    spec_fields = []
    for i in range(numeric):
        columns[f"n{i}"] = rng.normal(size=rows).round(3)
        spec_fields.append(Field(f"n{i}", "numeric", minimum=-10.0, maximum=10.0))
    for i in range(categorical):
        columns[f"c{i}"] = rng.choice([f"v{k}" for k in range(8)], size=rows)
        spec_fields.append(Field(f"c{i}", "categorical"))
    logit = columns["n0"] - 0.5 * np.asarray(columns[f"n{min(1, numeric - 1)}"]) + (columns["c0"] == "v3") * 1.5  # type: ignore[operator]
    columns[TARGET] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    spec = DatasetSpec(
        f"synthetic-{fields}", tuple(spec_fields), Label("y", ("1",), ("0",), "binary"), (DataFile("none.csv"),)
    )
    return spec, pd.DataFrame(columns)


def prepare(root: Path, spec: DatasetSpec, frame: pd.DataFrame, trees: int) -> tuple[ModelStore, float]:
    """A store whose version 1 is `trees` trees of `spec`, with its compiled form built."""
    store = ModelStore(root)
    split = int(len(frame) * 0.8)
    files = fixed_rounds_files(spec, frame.iloc[:split], frame.iloc[split:], trees)
    version = store.publish(files, VersionMetadata(spec_name=spec.name, form_digest=spec.form_digest()))
    (root / "CURRENT").write_text(f"{version}\n")  # a benchmark's private store: no trainer, no MLflow
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "utils.compiler_process", "--model-store", str(root), "--version", str(version)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return store, time.monotonic() - started


def padded(records: list[dict], spec: DatasetSpec, pad: int) -> list[dict]:
    categorical = {item.name for item in spec.categorical}
    return [
        {
            name: (value + " " * pad if name in categorical and isinstance(value, str) else value)
            for name, value in row.items()
        }
        for row in records
    ]


def measure(kafka: KafkaSettings, store: ModelStore, records: list[dict], plan: dict, workdir: Path) -> dict:
    prefix = f"curve-{uuid.uuid4().hex[:6]}-"
    topics = Topics().with_prefix(prefix)
    ensure_topics(kafka, topics)
    process = start("predictor", prefix, store, workdir)
    try:
        run_load(kafka, topics, build_payloads(records, 1000, "warm"), rate=0)
        payloads = build_payloads(records, plan["requests"], "tput")
        result = run_load(kafka, topics, payloads, rate=0, drain_timeout_s=600)
        latency = run_load(
            kafka, topics, build_payloads(records, int(plan["rate"] * plan["seconds"]), "lat"), rate=plan["rate"]
        )
        return {
            "request_bytes": int(np.mean([len(p) for p in payloads[:1000]])),
            "answers_per_second": round(float(result.throughput()), 1),
            "answered": result.answered,
            "requests": len(payloads),
            f"latency_at_{plan['rate']}": latency.latency_ms(),
            "rss_mib": rss_mib(process.pid),
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    plan = {"requests": 5000 if args.quick else 30_000, "rate": 500, "seconds": 3 if args.quick else 10}
    kafka = KafkaSettings(bootstrap_servers=settings_from(KafkaSettings).bootstrap_servers)
    adult = load_dataset(default_spec())
    adult_records = frame_to_records(adult.stream, adult.spec)
    adult_frame = pd.concat([adult.training, adult.holdout], ignore_index=True)
    report: dict = {"machine": describe_machine(), "plan": plan, "fields": [], "trees": [], "bytes": []}
    workdir = Path(tempfile.mkdtemp(prefix="curves-"))
    try:
        points = []
        for fields in (14, 50, 200):
            if fields == 14:
                spec, frame, records = adult.spec, adult_frame, adult_records
            else:
                spec, frame = synthetic(fields, SYNTHETIC_ROWS)
                records = frame_to_records(frame.head(5000), spec)
            points.append(("fields", {"fields": fields, "trees": 300}, spec, frame, records, 300))
        for trees in (100, 1000, 5000):
            points.append(("trees", {"trees": trees}, adult.spec, adult_frame, adult_records, trees))
        for pad in (0, 40, 90):
            points.append(
                ("bytes", {"padding": pad}, adult.spec, adult_frame, padded(adult_records, adult.spec, pad), 300)
            )
        stores: dict[tuple[str, int], tuple[ModelStore, float]] = {}
        for axis, point, spec, frame, records, trees in points:
            key = (spec.name, trees)
            if key not in stores:
                stores[key] = prepare(workdir / f"{spec.name}-{trees}", spec, frame, trees)
            store, compile_s = stores[key]
            print(f"== {axis} {point}", flush=True)
            figures = point | {"compile_seconds": round(compile_s, 1)} | measure(kafka, store, records, plan, workdir)
            print(f"   {figures}", flush=True)
            report[axis].append(figures)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cost-curves.json").write_text(json.dumps(report, indent=1))
    draw(report, RESULTS / "cost-curves.png")
    print(f"results: {RESULTS / 'cost-curves.json'}, chart: {RESULTS / 'cost-curves.png'}")


def draw(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rate = report["plan"]["rate"]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    for axis, (name, x_key, label) in zip(
        axes,
        (
            ("fields", "fields", "fields in the form"),
            ("trees", "trees", "trees in the model"),
            ("bytes", "request_bytes", "request bytes"),
        ),
        strict=True,
    ):
        points = report[name]
        xs = [point[x_key] for point in points]
        axis.plot(xs, [point["answers_per_second"] for point in points], "o-", color="#2b7bba", label="answers/s")
        axis.set_xlabel(label)
        axis.set_ylabel("answers / s", color="#2b7bba")
        twin = axis.twinx()
        twin.plot(xs, [point[f"latency_at_{rate}"]["p99"] for point in points], "s--", color="#c0504d", label="p99")
        twin.set_ylabel(f"p99 ms at {rate}/s", color="#c0504d")
        if name == "trees":
            axis.set_xscale("log")
            for x, point in zip(xs, points, strict=True):
                axis.annotate(f"{point['rss_mib']:.0f} MiB", (x, point["answers_per_second"]), fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
