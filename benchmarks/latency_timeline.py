"""Where a service's slow answers are: start one benchmark mode (benchmarks/pipeline.py), warm it,
then three runs at a fixed rate; per run p50/p99/max latency and the longest gap between answers,
and each stretch of requests slower than 50 ms (when in the run, how many, the worst).

    python -m benchmarks.latency_timeline predictor-confluent 1000 10 [extra arguments of the mode]

Labelled modes (predictor-labelled*, echo-two*) send labelled requests, as in the benchmark.

Nothing is written: it prints, to find stalls (a garbage collection, a background job) that a
percentile only hints at.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np

from benchmarks import pipeline
from benchmarks.loadgen import build_payloads, run_load
from utils.cli import settings_from
from utils.data import frame_to_records, labels_of, load_dataset
from utils.kafka.topics import ensure_topics
from utils.scoring import load_scorer
from utils.settings import KafkaSettings, Topics

SLOW_MS = 50.0
RUNS = 3


def main() -> None:
    if len(sys.argv) < 4:
        print(__doc__)
        raise SystemExit(2)
    mode, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    pipeline.COMMANDS[mode] = pipeline.COMMANDS[mode] + sys.argv[4:]
    kafka = KafkaSettings(bootstrap_servers=settings_from(KafkaSettings).bootstrap_servers)
    workdir = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    store = pipeline.prepare_store(workdir / "models")
    spec = load_scorer(store, 1).spec
    stream = load_dataset(spec).stream
    records = frame_to_records(stream, spec)
    labelled = pipeline.labelled_for(mode, spec, [int(label) for label in labels_of(stream)])
    prefix = f"timeline-{uuid.uuid4().hex[:6]}-"
    topics = Topics().with_prefix(prefix)
    ensure_topics(kafka, topics)
    process = pipeline.start(mode, prefix, store, workdir)
    try:
        run_load(kafka, topics, build_payloads(records, 2000, "warm", labelled=labelled), rate=0)
        for run in range(RUNS):
            batches_before = pipeline.batch_seconds_buckets(process)
            payloads = build_payloads(records, int(rate * seconds), f"run{run}", labelled=labelled)
            result = run_load(kafka, topics, payloads, rate=rate)
            latency = (result.received_at - result.sent_at) * 1000
            at = result.sent_at - np.nanmin(result.sent_at)
            print(
                f"run {run}: p50={np.nanpercentile(latency, 50):.1f} p99={np.nanpercentile(latency, 99):.1f} "
                f"max={np.nanmax(latency):.1f} longest_gap={result.longest_gap_ms(0, seconds):.1f} ms"
            )
            batches_after = pipeline.batch_seconds_buckets(process)
            if batches_before is not None and batches_after is not None:
                # A stall with no slow batch was spent outside the predictor's batch work: waiting
                # for records to arrive, for the cores, or for the broker's acknowledgements.
                run_batches = {bound: batches_after[bound] - batches_before.get(bound, 0.0) for bound in batches_after}
                total = run_batches.get(float("inf"), 0.0)
                over = {ms: total - run_batches.get(ms / 1000, total) for ms in (20, 50, 100)}
                print(
                    f"   batches {total:.0f}: over 20 ms {over[20]:.0f}, over 50 ms {over[50]:.0f}, "
                    f"over 100 ms {over[100]:.0f}"
                )
            slow = np.where(latency > SLOW_MS)[0]
            for stretch in np.split(slow, np.where(np.diff(slow) > 20)[0] + 1) if len(slow) else []:
                print(
                    f"   slower than {SLOW_MS:.0f} ms: t={at[stretch[0]]:.2f}-{at[stretch[-1]]:.2f} s, "
                    f"{len(stretch)} requests, worst {latency[stretch].max():.0f} ms"
                )
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
