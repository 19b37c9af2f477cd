"""How one retrain grows with the observations log: wall time, peak memory and where the time goes.

For each number of observations (default 0, 100k, 300k, 1M) and each place the trials run
(in-process, Spark local[2]), a real trainer process (trainer.py, default retrain settings) gets one
retrain request on a real observations topic and retrains on adult.data plus the newest N labelled
observations. Measured from the request to the "training completed" announcement; the phases come
from the version's metadata ("timings"); memory is the peak resident set of the trainer's whole
process tree (its Python, and with Spark the JVM and the Python workers), sampled every 0.25 s.

The observations are synthesised from adult.data with a fixed seed: a row drawn at random, its
age, hours and fnlwgt jittered, its label drawn from the serving model's probability for it (a
resampled row with its own label would let cross-validation memorise copies across folds and never
stop early). The trainer's Spark session starts before the request (it is opened once per service).

    python -m benchmarks.retrain                       # the full curve: about an hour and a half
    python -m benchmarks.retrain --quick               # 0 and 20k observations, 3 trials: minutes
    python -m benchmarks.retrain --sizes 1000000 --modes local[2]

Writes benchmarks/results/retrain-<timestamp>.json, retrain-latest.json and retrain-latest.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from benchmarks.pipeline import describe_machine
from train.rollout.tally import observations_end
from utils.cli import settings_from
from utils.data import TARGET, default_spec, frame_to_records, load_dataset
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.interface import ConsumerOptions, Partition, ProducerOptions
from utils.kafka.reading import assign_from_end
from utils.kafka.topics import ensure_topics
from utils.messages.codec import decode_object, encode
from utils.messages.events import RetrainRequested, TrainingCompleted
from utils.messages.requests import Observation
from utils.model_store import ModelStore
from utils.scoring import load_scorer
from utils.settings import RETRAIN_TUNING, KafkaSettings, Topics

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SEED = 20261128
IN_PROCESS = "in-process"
DEFAULT_SIZES = "0,100000,300000,1000000"
DEFAULT_MODES = f"{IN_PROCESS},local[2]"
RETRAIN_TIMEOUT_S = 4 * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated observation counts")
    parser.add_argument("--modes", default=DEFAULT_MODES, help=f"{IN_PROCESS} and/or Spark masters")
    parser.add_argument("--max-evals", type=int, default=RETRAIN_TUNING.max_evals, help="trials per retrain")
    parser.add_argument("--quick", action="store_true", help="sizes 0,20000 and 3 trials")
    parser.add_argument(
        "--combine", nargs="+", type=Path, metavar="RESULTS", help="merge earlier results files (no runs)"
    )
    args = parser.parse_args()
    if args.combine:
        combined = combine([json.loads(path.read_text()) for path in args.combine], [p.name for p in args.combine])
        write_results(combined, time.strftime("%Y%m%d-%H%M%S"))
        print("\n".join(describe_run(run) for run in combined["runs"]))
        return
    sizes = [0, 20_000] if args.quick else [int(size) for size in args.sizes.split(",")]
    max_evals = 3 if args.quick else args.max_evals
    modes = args.modes.split(",")
    kafka = KafkaSettings(bootstrap_servers=settings_from(KafkaSettings).bootstrap_servers, client="confluent")
    workdir = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    prefix = f"bench-retrain-{uuid.uuid4().hex[:8]}-"
    topics = Topics().with_prefix(prefix)  # each run has its own event topics, all share observations
    report: dict = {
        "machine": describe_machine(),
        "plan": {"sizes": sizes, "modes": modes, "max_evals": max_evals, "threads": RETRAIN_TUNING.threads},
        "runs": [],
    }
    try:
        base = base_store(workdir / "base", tracking_uri(workdir))
        ensure_topics(kafka, topics)
        started = time.perf_counter()
        end_offset = write_observations(kafka, topics.observations, base, max(sizes))
        report["plan"]["write_seconds"] = round(time.perf_counter() - started, 1)
        print(f"wrote {end_offset} observations in {report['plan']['write_seconds']} s", flush=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for size in sizes:
            for mode in modes:
                print(f"== {mode}, {size} observations", flush=True)
                run = retrain_once(mode, size, end_offset, max_evals, base, topics.observations, kafka, workdir)
                report["runs"].append(run)
                print(describe_run(run), flush=True)
                write_results(report, stamp)  # after each run: a long benchmark cut short keeps what it measured
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(describe_run(run) for run in report["runs"]))
    print(f"results: {RESULTS / f'retrain-{stamp}.json'}, chart: {RESULTS / 'retrain-latest.png'}")


def combine(reports: list[dict], names: list[str]) -> dict:
    """One report of several runs of this benchmark (same machine, same settings), e.g. a long
    benchmark done in two sittings; a later file's run replaces an earlier one of the same mode and size."""
    if len({(r["plan"]["max_evals"], r["plan"]["threads"]) for r in reports}) != 1:
        raise SystemExit("results with different trial budgets or threads do not combine")
    runs = {(run["mode"], run["observations"]): run for report in reports for run in report["runs"]}
    plan = {
        **reports[-1]["plan"],
        "sizes": sorted({size for _, size in runs}),
        "modes": list(dict.fromkeys(mode for mode, _ in runs)),
        "combined_from": names,
    }
    ordered = sorted(runs.values(), key=lambda run: (run["observations"], run["mode"]))
    return {"machine": reports[-1]["machine"], "plan": plan, "runs": ordered}


def base_store(root: Path, tracking_uri: str) -> Path:
    """A store holding the first version, trained by initialize.py (15 trials, as `make demo` does)
    into the benchmark's own MLflow database, which the trainers then record their retrains in."""
    print("training the first version (initialize.py --max-evals 15)", flush=True)
    env = {**os.environ, "MODEL_STORE_DIR": str(root), "MLFLOW_TRACKING_URI": tracking_uri}
    subprocess.run(
        [sys.executable, "initialize.py", "--max-evals", "15"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return root


def synthesise(count: int, store_root: Path, seed: int = SEED) -> pd.DataFrame:
    """`count` labelled rows like adult.data's (see the module docstring)."""
    rng = np.random.default_rng(seed)
    spec = default_spec()
    adult = load_dataset(spec).training
    rows = adult.iloc[rng.integers(0, len(adult), count)].reset_index(drop=True)
    rows["age"] = np.clip(rows["age"] + rng.integers(-3, 4, count), 17, 90)
    rows["hours_per_week"] = np.clip(rows["hours_per_week"] + rng.integers(-5, 6, count), 1, 99)
    rows["fnlwgt"] = np.maximum(1, (rows["fnlwgt"] * rng.lognormal(0.0, 0.2, count)).round()).astype(int)
    scorer = load_scorer(ModelStore(store_root), 1)
    probabilities = np.asarray(scorer.predict_proba(frame_to_records(rows, spec)))
    rows[TARGET] = (rng.random(count) < probabilities).astype(int)
    return rows


def write_observations(kafka: KafkaSettings, topic: str, store_root: Path, count: int) -> int:
    """Write `count` synthetic observations; returns the topic's end offset."""
    producer = create_producer(kafka, ProducerOptions("bench-retrain-writer"))
    chunk = 100_000
    try:
        for start in range(0, count, chunk):
            rows = synthesise(min(chunk, count - start), store_root, SEED + start)
            features = frame_to_records(rows, default_spec())
            for number, (row, label) in enumerate(zip(features, rows[TARGET].tolist(), strict=True)):
                observation = Observation(f"bench-{start + number}", row, int(label))
                producer.send(topic, encode(observation.to_dict()))
            producer.flush(120)
    finally:
        producer.close(timeout_s=30)
    return observations_end(kafka, topic, "bench-retrain-end")


def retrain_once(
    mode: str,
    size: int,
    end_offset: int,
    max_evals: int,
    base: Path,
    observations_topic: str,
    kafka: KafkaSettings,
    workdir: Path,
) -> dict:
    """Start a trainer on a fresh copy of the base store and its own event topics, request one
    retrain, measure it, stop."""
    store_root = workdir / f"store-{len(list(workdir.glob('store-*')))}"
    shutil.copytree(base, store_root)
    prefix = f"bench-retrain-{uuid.uuid4().hex[:8]}-"
    topics = Topics().with_prefix(prefix)
    ensure_topics(kafka, topics)
    env = {
        **os.environ,
        "MODEL_STORE_DIR": str(store_root),
        "MLFLOW_TRACKING_URI": tracking_uri(workdir),
        "PIPELINE_TOPIC_PREFIX": prefix,
        "PYTHONUNBUFFERED": "1",
    }
    args = ["--observations-topic", observations_topic, "--max-observations", str(size)]
    args += ["--max-evals", str(max_evals), "--metrics-port", "0"]
    if mode != IN_PROCESS:
        args += ["--spark-master", mode]
    log_path = workdir / f"trainer-{store_root.name}.log"
    with open(log_path, "ab") as log_file:
        trainer = subprocess.Popen(
            [sys.executable, "trainer.py", *args],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopping the group also stops a compiled-form build it started
        )
    try:
        wait_for_text(log_path, "trainer ready", trainer, 600)
        announcements = create_consumer(kafka, ConsumerOptions("bench-retrain-events"))
        producer = create_producer(kafka, ProducerOptions("bench-retrain-request"))
        try:
            [events] = assign_from_end(announcements, topics.model_events)
            memory = PeakMemory(trainer.pid)
            started = time.perf_counter()
            producer.send(topics.retrain, encode(RetrainRequested(end_offset, "benchmark").to_dict()))
            producer.flush(30)
            version = wait_for_announcement(announcements, events, trainer)
            seconds = time.perf_counter() - started
            memory.stop()
        finally:
            producer.close(timeout_s=10)
            announcements.close()
        metadata = ModelStore(store_root).metadata(version)
        return {
            "mode": mode,
            "observations": size,
            "training_rows": metadata.trained_rows,
            "seconds": round(seconds, 1),
            "timings": {phase: round(value, 1) for phase, value in metadata.timings.items()},
            "peak_rss_mib": {"trainer": memory.trainer_mib, "process_tree": memory.tree_mib},
            "trials": metadata.tuning["trials"],
            "holdout_auc": round(metadata.metrics["holdout_auc"], 4),
        }
    finally:
        stop_group(trainer)


def tracking_uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"


def wait_for_text(path: Path, text: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"trainer not ready (exit {process.poll()}):\n{path.read_text()[-3000:]}")
        time.sleep(0.5)


def wait_for_announcement(consumer, partition: Partition, trainer: subprocess.Popen) -> int:
    """The version of the next "training completed" on the model events topic."""
    deadline = time.monotonic() + RETRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if trainer.poll() is not None:
            raise RuntimeError(f"trainer exited with {trainer.returncode} during the retrain")
        for record in consumer.poll(timeout_s=1.0):
            payload = decode_object(record.value)
            if payload.get("event") == TrainingCompleted.EVENT:
                return int(payload["version"])
    raise RuntimeError(f"no training completed within {RETRAIN_TIMEOUT_S} s")


class PeakMemory:
    """Peak RSS of a process and of its whole tree, sampled in a thread. The compiled-form build the
    trainer starts for a new version (utils/compiled_cache.py) is left out: it is not part of the retrain."""

    def __init__(self, pid: int, interval_s: float = 0.25):
        self.trainer_mib = 0.0
        self.tree_mib = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(pid, interval_s), daemon=True)
        self._thread.start()

    def _sample(self, pid: int, interval_s: float) -> None:
        root = psutil.Process(pid)
        while not self._done.wait(interval_s):
            try:
                trainer = root.memory_info().rss
                children = root.children(recursive=True)
            except psutil.Error:
                return  # the trainer has ended
            # Each child on its own: one that ends (or lingers as a zombie) must not void the sample.
            tree = trainer + sum(_rss(child) for child in children)
            self.trainer_mib = max(self.trainer_mib, round(trainer / 2**20, 1))
            self.tree_mib = max(self.tree_mib, round(tree / 2**20, 1))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _rss(process: psutil.Process) -> int:
    """A child's resident set; 0 for the compiled-form build and for a process gone meanwhile."""
    try:
        return 0 if "utils.compiler_process" in process.cmdline() else process.memory_info().rss
    except psutil.Error:
        return 0


def stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def describe_run(run: dict) -> str:
    phases = " ".join(f"{phase}={seconds}" for phase, seconds in run["timings"].items())
    return (
        f"{run['mode']} {run['observations']:>8} obs: {run['seconds']:>7.1f} s, "
        f"peak {run['peak_rss_mib']['trainer']:.0f} MiB trainer / {run['peak_rss_mib']['process_tree']:.0f} MiB "
        f"tree, auc {run['holdout_auc']}; {phases}"
    )


def write_results(report: dict, stamp: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1)
    (RESULTS / f"retrain-{stamp}.json").write_text(text)
    (RESULTS / "retrain-latest.json").write_text(text)
    draw(report, RESULTS / "retrain-latest.png")


def draw(report: dict, path: Path) -> None:
    """Wall time (stacked by phase) and peak memory against the number of observations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for mode in report["plan"]["modes"]:
        runs = sorted((r for r in report["runs"] if r["mode"] == mode), key=lambda r: r["observations"])
        counts = [r["observations"] for r in runs]
        time_axis.plot(counts, [r["seconds"] / 60 for r in runs], marker="o", label=f"{mode}: whole retrain")
        time_axis.plot(
            counts,
            [r["timings"].get("tuning", 0) / 60 for r in runs],
            marker="x",
            linestyle="--",
            label=f"{mode}: trials",
        )
        sampled = [r for r in runs if r["peak_rss_mib"]["process_tree"] > 0]  # 0: not sampled
        memory_axis.plot(
            [r["observations"] for r in sampled],
            [r["peak_rss_mib"]["process_tree"] for r in sampled],
            marker="o",
            label=mode,
        )
    time_axis.set(
        xlabel="labelled observations in the retrain", ylabel="minutes", title="One retrain (request -> announced)"
    )
    memory_axis.set(xlabel="labelled observations in the retrain", ylabel="MiB", title="Peak RSS, trainer tree")
    for axis in (time_axis, memory_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(
        f"{report['plan']['max_evals']} trials, {report['machine']['cpus']} cores "
        f"({report['machine']['cpu_model']}); broker on the same machine",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
