"""Long-running: score app events from Kafka, publish predictions, request retrains, hot-swap models."""

from __future__ import annotations

import argparse
import sys

from predict.service import run
from utils.service import run_service
from utils.settings import (
    PredictorSettings,
    add_common_arguments,
    add_registry_arguments,
    common_from_args,
    default,
    positive_int,
)


def build_parser() -> argparse.ArgumentParser:
    def d(name: str):
        return default(PredictorSettings, name)

    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    add_registry_arguments(parser)
    parser.add_argument(
        "--retrain-every",
        type=positive_int,
        default=d("retrain_every"),
        help="labelled observations between retrain requests (counted over all predictors)",
    )
    parser.add_argument("--group-id", default=d("group_id"), help="consumer group of the predictors")
    parser.add_argument("--max-batch", type=positive_int, default=d("max_batch"), help="most records scored per poll")
    parser.add_argument(
        "--poll-timeout-ms",
        type=positive_int,
        default=d("poll_timeout_ms"),
        help="longest wait of one poll for requests",
    )
    parser.add_argument(
        "--max-in-flight-records",
        type=positive_int,
        default=d("max_in_flight_records"),
        help="records polled but not yet acknowledged, at most (then the loop waits for the broker)",
    )
    parser.add_argument(
        "--max-in-flight-bytes",
        type=positive_int,
        default=d("max_in_flight_bytes"),
        help="bytes of requests polled but not yet acknowledged, at most",
    )
    parser.add_argument(
        "--explain-top",
        type=positive_int,
        default=d("explain_top"),
        help='feature contributions in the answer to a request with "explain": true',
    )
    parser.add_argument(
        "--commit-interval-ms",
        type=positive_int,
        default=d("commit_interval_ms"),
        help="acknowledged offsets are committed at most this often (always before a rebalance or a stop)",
    )
    parser.add_argument(
        "--scorer",
        choices=("auto", "lightgbm", "compiled"),
        default=d("scorer"),
        help="auto: LightGBM at once, then the compiled form once built and checked; "
        "compiled: the same, refusals logged as errors; lightgbm: never compile",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=positive_int,
        default=d("max_message_bytes"),
        help="larger requests are answered with error too_large, before they are parsed",
    )
    parser.add_argument("--metrics-port", type=int, default=d("metrics_port"), help="Prometheus /metrics (0: off)")
    parser.add_argument(
        "--live-window", type=positive_int, default=d("live_window"), help="labelled requests in live quality"
    )
    parser.add_argument(
        "--report-interval", type=float, default=d("report_interval_s"), help="seconds between live reports"
    )
    parser.add_argument(
        "--processing-guarantee",
        choices=("at-least-once", "exactly-once"),
        default=d("processing_guarantee"),
        help="exactly-once: each batch's answers, dead letters, observations, retrain requests and "
        "consumer offsets are one Kafka transaction",
    )
    parser.add_argument(
        "--instance-slot",
        type=int,
        default=d("instance_slot"),
        help="exactly-once: this predictor's slot (0, 1, ...); its transactional id is <group>-<slot>, so "
        "a restarted instance fences the zombie of the one before it",
    )
    parser.add_argument(
        "--model-source",
        choices=("local", "mlflow"),
        default=d("model_source"),
        help="where versions come from: the --model-store folder, or the MLflow registry (cached in it)",
    )
    return parser


def parse_settings(argv: list[str]) -> PredictorSettings:
    args = build_parser().parse_args(argv)
    return PredictorSettings(
        common=common_from_args(args),
        group_id=args.group_id,
        retrain_every=args.retrain_every,
        max_batch=args.max_batch,
        poll_timeout_ms=args.poll_timeout_ms,
        max_in_flight_records=args.max_in_flight_records,
        max_in_flight_bytes=args.max_in_flight_bytes,
        scorer=args.scorer,
        commit_interval_ms=args.commit_interval_ms,
        explain_top=args.explain_top,
        max_message_bytes=args.max_message_bytes,
        metrics_port=args.metrics_port,
        live_window=args.live_window,
        report_interval_s=args.report_interval,
        experiment=args.experiment,
        model_source=args.model_source,
        registered_model=args.registered_model,
        processing_guarantee=args.processing_guarantee,
        instance_slot=args.instance_slot,
    )


if __name__ == "__main__":
    sys.exit(run_service("predictor", run, parse_settings(sys.argv[1:])))
