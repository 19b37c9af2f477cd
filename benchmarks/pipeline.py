"""End-to-end benchmark against the real local broker, with the scorer as a real process.

Modes, measured side by side in one invocation:
  predictor  this project's predictor (predictor.py), on the compiled form of the model
  original   the original's per-message path (benchmarks/original_predictor.py)
  echo       a plain Kafka echo, no ML: the ceiling (benchmarks/echo.py)
A `-confluent` suffix runs the same program on confluent-kafka instead of kafka-python;
`predictor-lightgbm` scores with LightGBM itself (`--scorer lightgbm`); `predictor-registry-json` and
`predictor-registry-avro` send the requests in a schema registry's wire format, JSON Schema or Avro;
`predictor-labelled` sends labelled requests (an answer and an observation each), against `echo-two`,
the echo that writes two records per request.

For each mode: throughput (push N requests as fast as possible, answers/s end to end) and latency
at fixed rates (request sent -> answer received). For the predictor also: hot swaps under load
(longest gap between answers, requests lost), memory (RSS after 10k vs after 1M requests), and
where the loop's time goes during the throughput run (its `pipeline_stage_seconds` metric).
The model is the serving one of MODEL_STORE_DIR (README: the headline uses `python initialize.py`'s
default model); its compiled form is built before the modes run, as the trainer's store would have it.

    python -m benchmarks.pipeline            # full run, ~15 minutes
    python -m benchmarks.pipeline --quick    # smoke run, under 2 minutes

Writes benchmarks/results/<timestamp>.json, benchmarks/results/latest.json and latest.png.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import fastavro
import numpy as np

from benchmarks.loadgen import LoadResult, build_payloads, read_back_rate, run_load
from train.schema_registration import register_schemas
from utils.cli import settings_from
from utils.compiled_cache import CACHE_DIR, MANIFEST_FILE
from utils.data import frame_to_records, labels_of, load_dataset
from utils.form import Form
from utils.kafka.clients import create_producer
from utils.kafka.interface import ProducerOptions
from utils.kafka.topics import ensure_topics
from utils.messages.codec import encode
from utils.messages.events import TrainingCompleted
from utils.model_store import ModelStore
from utils.schema_registry import wire
from utils.schema_registry.client import RegistryClient
from utils.schema_registry.schemas import AvroReader, avro_request, request_schema
from utils.scoring import load_scorer
from utils.settings import CommonSettings, KafkaSettings, SchemaFormat, Topics
from utils.spec import DatasetSpec

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
COMMANDS = {
    "predictor": ["predictor.py"],
    "original": ["-m", "benchmarks.original_predictor"],
    "echo": ["-m", "benchmarks.echo"],
    # The same two programs on librdkafka (utils/kafka/confluent.py) instead of kafka-python.
    "predictor-confluent": ["predictor.py", "--kafka-client", "confluent"],
    "echo-confluent": ["-m", "benchmarks.echo", "--kafka-client", "confluent"],
    "predictor-lightgbm": ["predictor.py", "--scorer", "lightgbm"],
    # Labelled requests: each costs an answer and an observation; the ceiling writes two records.
    "predictor-labelled": ["predictor.py"],
    "predictor-labelled-confluent": ["predictor.py", "--kafka-client", "confluent"],
    "echo-two": ["-m", "benchmarks.echo", "--records-per-request", "2"],
    "echo-two-confluent": ["-m", "benchmarks.echo", "--records-per-request", "2", "--kafka-client", "confluent"],
    "predictor-lightgbm-confluent": ["predictor.py", "--scorer", "lightgbm", "--kafka-client", "confluent"],
    # One Kafka transaction per batch (answers, observations, offsets): what exactly-once costs.
    "predictor-eos": ["predictor.py", "--processing-guarantee", "exactly-once"],
    # Requests in the schema registry's wire format (docs/schema-registry.md), against a real
    # registry (scripts/registry.sh, started if SCHEMA_REGISTRY_URL names none that answers).
    "predictor-registry-json": ["predictor.py"],
    "predictor-registry-avro": ["predictor.py"],
    "predictor-eos-confluent": [
        "predictor.py",
        "--processing-guarantee",
        "exactly-once",
        "--kafka-client",
        "confluent",
    ],
}
DEFAULT_MODES = (
    "predictor,echo,predictor-confluent,echo-confluent,predictor-labelled,echo-two,"
    "predictor-labelled-confluent,echo-two-confluent,predictor-lightgbm,original"
)
STAGES = ("poll", "validate", "transform", "predict", "send", "ack_wait", "commit")
READY = {"predictor": "predictor ready", "original": "original ready", "echo": "echo ready"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run for smoke checks")
    parser.add_argument("--modes", default=DEFAULT_MODES)
    parser.add_argument("--rates", help="comma-separated latency rates, instead of the plan's")
    parser.add_argument("--latency-seconds", type=float, help="seconds per latency rate, instead of the plan's")
    parser.add_argument("--merge", action="store_true", help="add these modes to results/latest.json")
    args = parser.parse_args()
    plan = quick_plan() if args.quick else full_plan()
    if args.rates:
        plan["latency_rates"] = [int(rate) for rate in args.rates.split(",")]
    if args.latency_seconds:
        plan["latency_seconds"] = args.latency_seconds
    kafka = KafkaSettings(bootstrap_servers=settings_from(KafkaSettings).bootstrap_servers)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    store = prepare_store(workdir / "models")
    spec = load_scorer(store, 1).spec  # the serving model's form: the benchmark runs on any spec
    stream = load_dataset(spec).stream
    records = frame_to_records(stream, spec)
    labels = [int(label) for label in labels_of(stream)]
    report = {"machine": describe_machine(), "plan": plan, "model": describe_model(store), "modes": {}}
    try:
        for mode in args.modes.split(","):
            print(f"== {mode}", flush=True)
            report["modes"][mode] = benchmark_mode(mode, plan, kafka, store, (records, labels), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.merge and (RESULTS / "latest.json").exists():
        previous = json.loads((RESULTS / "latest.json").read_text())
        report["modes"] = {**previous["modes"], **report["modes"]}
    summarise(report)
    write_results(report)


def full_plan() -> dict:
    return {
        "throughput_requests": {"predictor": 100_000, "echo": 100_000, "original": 5_000},
        "latency_rates": [200, 1000, 3000],
        "latency_seconds": 10,
        "swap_rate": 1000,
        "swap_seconds": 20,
        "memory_requests": 1_000_000,
    }


def quick_plan() -> dict:
    return {
        "throughput_requests": {"predictor": 10_000, "echo": 10_000, "original": 1_000},
        "latency_rates": [200, 1000],
        "latency_seconds": 3,
        "swap_rate": 500,
        "swap_seconds": 8,
        "memory_requests": 30_000,
    }


def prepare_store(root: Path) -> ModelStore:
    """A private copy of the serving model (or a quickly trained one) plus two copies of it as
    versions 2 and 3, for hot-swap tests."""
    source = ModelStore(settings_from(CommonSettings).model_store)
    current = source.current_version()
    if current is None:
        print("no model in the store: training a small one for the benchmark", flush=True)
        env = {**os.environ, "MODEL_STORE_DIR": str(root), "MLFLOW_TRACKING_URI": f"sqlite:///{root.parent}/mlflow.db"}
        subprocess.run([sys.executable, "initialize.py", "--max-evals", "3"], cwd=ROOT, env=env, check=True)
    else:
        root.mkdir(parents=True)
        shutil.copytree(source.path_of(current), root / "1")
        (root / "CURRENT").write_text("1\n")
    store = ModelStore(root)
    for version in (2, 3, 4):
        shutil.copytree(store.path_of(1), store.path_of(version))
    print("building the compiled form of the model (once; predictors find it in the store)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "utils.compiler_process", "--model-store", str(root), "--version", "1"],
        cwd=ROOT,
        check=True,
    )
    return store


def describe_model(store: ModelStore) -> dict:
    metadata = store.metadata(1)
    [manifest] = [json.loads(path.read_text()) for path in (store.root / CACHE_DIR).glob(f"*/{MANIFEST_FILE}")]
    return {
        "trees": manifest["trees"],
        "num_boost_round": metadata.num_boost_round,
        "compile_seconds": manifest["compile_seconds"],
        "compiler": manifest["compiler"].split(" cpu=")[0],
        # 0: a version from before references; each swap then scores sample rows with LightGBM in
        # the background to check the compiled form (2,000 rows: a core for ~150 ms per swap)
        "reference_rows": len(reference.records) if (reference := load_scorer(store, 1).reference) else 0,
    }


def labelled_for(mode: str, spec: DatasetSpec, labels: list[int]) -> tuple[list[int], Form] | None:
    """What labels a mode's requests carry: the labelled modes and the two-record echo send each
    request with its label (an answer and an observation each); the others send none."""
    return (labels, Form(spec)) if "labelled" in mode or mode.startswith("echo-two") else None


def benchmark_mode(
    mode: str, plan: dict, kafka: KafkaSettings, store: ModelStore, rows: tuple[list, list[int]], workdir: Path
) -> dict:
    results: dict = {}
    prefix = f"bench-{uuid.uuid4().hex[:6]}-"
    topics = Topics().with_prefix(prefix)
    ensure_topics(kafka, topics)
    spec = load_scorer(store, 1).spec
    encode_request = registry_encoder(mode, topics, spec) if "registry" in mode else encode
    records, labels = rows
    labelled = labelled_for(mode, spec, labels)

    def payloads_of(count: int, run_id: str) -> list[bytes]:
        return build_payloads(records, count, run_id, encode_request, labelled)

    process = start(mode, prefix, store, workdir)
    try:
        # Warm-up: first batches pay for imports, connections and LightGBM's lazy set-up.
        run_load(kafka, topics, payloads_of(2000 if mode != "original" else 200, "warm"), rate=0)
        count = plan["throughput_requests"][mode.split("-")[0]]
        stages_before = stage_seconds(process)
        result = run_load(kafka, topics, payloads_of(count, "tput"), rate=0, drain_timeout_s=600)
        stages_after = stage_seconds(process)  # before the read-back below, while the predictor idles
        results["throughput"] = {
            "requests": count,
            "answered": result.answered,
            "per_second": round(float(result.throughput()), 1),
            # the load generator reading back what it wrote, as fast as it can: it is not the bottleneck
            "loadgen_read_back_per_second": round(read_back_rate(kafka, topics.app_messages), 1),
        }
        print(f"   throughput {results['throughput']}", flush=True)
        if stages_before is not None and stages_after is not None:
            results["stages"] = stage_breakdown(stages_before, stages_after, result)
            print(f"   stages {results['stages']}", flush=True)
        results["latency"] = {}
        for rate in plan["latency_rates"]:
            if rate > 0.8 * results["throughput"]["per_second"]:
                # Beyond its capacity a queue only grows: latency is then the backlog, not the scorer.
                results["latency"][str(rate)] = {"saturated": True}
                print(f"   latency @{rate}/s skipped: above 80% of the measured throughput", flush=True)
                continue
            count = int(rate * plan["latency_seconds"])
            payloads = payloads_of(count, f"lat{rate}")
            result = run_load(kafka, topics, payloads, rate=rate, drain_timeout_s=120)
            results["latency"][str(rate)] = {
                "requests": count,
                "answered": result.answered,
                **result.latency_ms(),
                # the same figure the hot-swap run reports, without swaps: the loop's own jitter
                "longest_gap_ms": result.longest_gap_ms(0.5, plan["latency_seconds"] - 0.5),
            }
            print(f"   latency @{rate}/s {results['latency'][str(rate)]}", flush=True)
        with_swaps = plan.get("hot_swap", True)
        if with_swaps and mode.startswith("predictor") and "registry" not in mode and "labelled" not in mode:
            results["hot_swap"] = hot_swap(kafka, topics, plan, records, process)
        if plan.get("memory", True) and mode in ("predictor", "predictor-confluent"):
            results["memory"] = memory(kafka, topics, plan, records, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return results


def registry_url() -> str:
    """SCHEMA_REGISTRY_URL if it answers, else the local registry (started if it is not running)."""
    url = os.environ.get("SCHEMA_REGISTRY_URL") or "http://localhost:8081/apis/ccompat/v7"
    try:
        urllib.request.urlopen(f"{url}/subjects", timeout=2).close()
    except OSError:
        print("starting the local schema registry (scripts/registry.sh)", flush=True)
        subprocess.run(["bash", str(ROOT / "scripts" / "registry.sh"), "start"], check=True)
        url = "http://localhost:8081/apis/ccompat/v7"
    os.environ["SCHEMA_REGISTRY_URL"] = url
    return url


def registry_encoder(mode: str, topics: Topics, spec: DatasetSpec) -> Callable[[dict], bytes]:
    """The mode's schemas registered for its topics, and how its requests are written: the wire
    format by the pipeline's codec (what confluent-kafka's serializers write, byte for byte)."""
    schema_format: SchemaFormat = "avro" if mode.endswith("avro") else "json"
    ids = register_schemas(RegistryClient(registry_url()), spec, schema_format, topics)
    if schema_format == "json":
        return lambda payload: wire.frame(ids.request_id, encode(payload))
    writer = AvroReader.of(request_schema(spec, "avro")).parsed

    def avro(payload: dict) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, writer, avro_request(payload, spec))
        return wire.frame(ids.request_id, out.getvalue())

    return avro


def start(mode: str, prefix: str, store: ModelStore, workdir: Path) -> subprocess.Popen:
    env = {
        **{name: value for name, value in os.environ.items() if name != "SCHEMA_REGISTRY_URL" or "registry" in mode},
        "PIPELINE_TOPIC_PREFIX": prefix,
        "MODEL_STORE_DIR": str(store.root),
        "LOG_LEVEL": "INFO",
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = workdir / f"{mode}.log"
    args = [sys.executable, *COMMANDS[mode], "--group-id", f"{prefix}{mode}"]
    if mode != "original" and "--kafka-client" not in args:
        args += ["--kafka-client", "kafka-python"]  # a mode without the -confluent suffix
    metrics_port = None
    if mode.startswith("predictor"):
        metrics_port = free_port()
        args += ["--retrain-every", "100000000", "--metrics-port", str(metrics_port)]
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    ready = READY[mode.split("-")[0]]
    if mode.startswith("predictor") and "lightgbm" not in mode:
        ready = "scoring with the compiled form"  # measure the form that serves once it is ready
    deadline = time.monotonic() + 120
    while ready not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{mode} did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    process.log_path = log_path  # type: ignore[attr-defined]  # where the benchmark reads the swaps
    process.metrics_port = metrics_port  # type: ignore[attr-defined]
    return process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metrics_text(process) -> str | None:
    """The predictor's /metrics page (None for a mode without one)."""
    if process.metrics_port is None:
        return None
    url = f"http://127.0.0.1:{process.metrics_port}/metrics"
    return urllib.request.urlopen(url, timeout=5).read().decode()


def stage_seconds(process) -> dict[str, float] | None:
    """The predictor's cumulative seconds per loop stage."""
    if (text := metrics_text(process)) is None:
        return None
    found = re.findall(r'^pipeline_stage_seconds_total\{stage="(\w+)"\} (\S+)$', text, re.MULTILINE)
    return {stage: float(value) for stage, value in found}


def histogram_buckets(process, name: str, labels: str = "") -> dict[float, float] | None:
    """One of the predictor's cumulative histograms (upper bound in seconds -> count); `labels` as
    the page writes them before `le`, e.g. 'generation="2",'."""
    if (text := metrics_text(process)) is None:
        return None
    found = re.findall(rf'^{name}_bucket\{{{re.escape(labels)}le="([^"]+)"\}} (\S+)$', text, re.MULTILINE)
    return {float(bound): float(count) for bound, count in found}


def batch_seconds_buckets(process) -> dict[float, float] | None:
    """The predictor's cumulative histogram of seconds per micro-batch (upper bound -> batches)."""
    return histogram_buckets(process, "pipeline_batch_seconds")


def stage_breakdown(before: dict[str, float], after: dict[str, float], result: LoadResult) -> dict:
    """Microseconds per request in each stage during the throughput run, and each stage's share of
    the run's wall time (the rest: the loop's own bookkeeping, metrics, logging)."""
    wall = float(np.nanmax(result.received_at) - np.nanmin(result.sent_at))
    spent = {stage: after.get(stage, 0.0) - before.get(stage, 0.0) for stage in STAGES}
    per_request = {stage: round(1e6 * seconds / max(1, result.answered), 1) for stage, seconds in spent.items()}
    share = {stage: round(100 * seconds / wall, 1) for stage, seconds in spent.items()}
    return {"us_per_request": per_request, "pct_of_wall": share, "wall_s": round(wall, 2)}


def hot_swap(kafka, topics, plan, records, process) -> dict:
    """Announce versions 2, 3, 4 during sustained load; the predictor loads each in the background."""
    rate, seconds = plan["swap_rate"], plan["swap_seconds"]
    producer = create_producer(kafka, ProducerOptions("bench-swap"))
    pending = [(seconds * 0.25, 2), (seconds * 0.5, 3), (seconds * 0.75, 4)]

    def trigger(elapsed: float) -> None:
        while pending and elapsed >= pending[0][0]:
            _, version = pending.pop(0)
            message = TrainingCompleted(version, True, {}, 0, 0)
            producer.send(topics.model_events, encode(message.to_dict()))
            producer.flush()

    result: LoadResult = run_load(
        kafka, topics, build_payloads(records, int(rate * seconds), "swap"), rate, during=trigger
    )
    producer.close()
    swaps = process.log_path.read_text().count("model swapped")
    figures = {
        "rate": rate,
        "seconds": seconds,
        "sent": result.sent,
        "answered": result.answered,
        "lost": result.sent - result.answered,
        "swaps": swaps,
        "versions_seen": result.versions,
        "longest_gap_ms": result.longest_gap_ms(0.5, seconds - 0.5),
        **result.latency_ms(),
    }
    print(f"   hot swap {figures}", flush=True)
    return figures


def memory(kafka, topics, plan, records, process) -> dict:
    first = run_load(kafka, topics, build_payloads(records, 10_000, "mem0"), rate=0)
    rss_start = rss_mib(process.pid)
    total, chunk = 10_000, 100_000
    while total < plan["memory_requests"]:
        count = min(chunk, plan["memory_requests"] - total)
        result = run_load(kafka, topics, build_payloads(records, count, f"mem{total}"), rate=0, drain_timeout_s=600)
        total += count
        if result.answered < count:
            print(f"   warning: {count - result.answered} unanswered in memory run", flush=True)
    rss_end = rss_mib(process.pid)
    figures = {
        "requests": total,
        "rss_mib_after_10k": rss_start,
        "rss_mib_after_all": rss_end,
        "growth_pct": round(100 * (rss_end - rss_start) / rss_start, 1),
        "answered_first_10k": first.answered,
    }
    print(f"   memory {figures}", flush=True)
    return figures


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def describe_machine() -> dict:
    import kafka
    import lightgbm

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kafka_python": kafka.__version__,
        "lightgbm": lightgbm.__version__,
        "note": "broker, load generator and scorer share the machine's cores",
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def summarise(report: dict) -> None:
    modes = report["modes"]

    def rate(mode):
        return modes.get(mode, {}).get("throughput", {}).get("per_second")

    if rate("predictor") and rate("original"):
        report["predictor_vs_original"] = round(rate("predictor") / rate("original"), 1)
    if rate("predictor") and rate("echo"):
        report["predictor_vs_echo_pct"] = round(100 * rate("predictor") / rate("echo"), 1)
    swap_rate = int(report["plan"]["swap_rate"])
    report["targets"] = {
        f"{client}{kind}": target_figures(modes[f"{predictor}{suffix}"], modes[f"{echo}{suffix}"], swap_rate)
        for client, suffix in (("kafka-python", ""), ("confluent-kafka", "-confluent"))
        for kind, predictor, echo in (("", "predictor", "echo"), (" labelled", "predictor-labelled", "echo-two"))
        if f"{predictor}{suffix}" in modes and f"{echo}{suffix}" in modes
    }
    print(json.dumps({k: v for k, v in report.items() if k != "plan"}, indent=1))


def target_figures(predictor: dict, echo: dict, swap_rate: int) -> dict:
    """The issue's targets, side by side with what this run measured (None: not measured)."""
    figures: dict = {}
    if predictor.get("throughput") and echo.get("throughput"):
        share = 100 * predictor["throughput"]["per_second"] / echo["throughput"]["per_second"]
        figures["throughput_pct_of_echo"] = {"value": round(share, 1), "target": ">= 80", "met": share >= 80}
    mine, ceiling = predictor.get("latency", {}).get("1000", {}), echo.get("latency", {}).get("1000", {})
    for quantile, limit in (("p50", 1.5), ("p99", 2.0)):
        if mine.get(quantile) and ceiling.get(quantile):
            ratio = mine[quantile] / ceiling[quantile]
            figures[f"{quantile}_at_1000_vs_echo"] = {
                "value": round(ratio, 2),
                "target": f"<= {limit}",
                "met": ratio <= limit,
            }
    if mine.get("longest_gap_ms") and ceiling.get("longest_gap_ms"):
        ratio = mine["longest_gap_ms"] / ceiling["longest_gap_ms"]
        figures["longest_gap_at_1000_vs_echo"] = {"value": round(ratio, 2), "target": "<= 1.5", "met": ratio <= 1.5}
    swap = predictor.get("hot_swap")
    # The echo's own longest gap without swaps, at the swap's rate if measured there, else at 1,000/s.
    echo_gap = (echo.get("latency", {}).get(str(swap_rate)) or ceiling).get("longest_gap_ms")
    if swap and echo_gap:
        met = swap["lost"] == 0 and swap["longest_gap_ms"] <= 1.5 * echo_gap
        figures["hot_swap"] = {
            "lost": swap["lost"],
            "longest_gap_ms": swap["longest_gap_ms"],
            "echo_gap_ms": echo_gap,
            "target": "0 lost, gap <= 1.5x the echo's",
            "met": met,
        }
    if predictor.get("memory"):
        growth = predictor["memory"]["growth_pct"]
        figures["memory_growth_pct"] = {"value": growth, "target": "<= 10", "met": abs(growth) <= 10}
    return figures


def write_results(report: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=1)
    (RESULTS / f"{stamp}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    from benchmarks.chart import draw

    draw(report, RESULTS / "latest.png")
    print(f"results: {RESULTS / (stamp + '.json')}, chart: {RESULTS / 'latest.png'}")


if __name__ == "__main__":
    main()
