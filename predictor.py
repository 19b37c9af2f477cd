"""Long-running: score app events from Kafka, publish predictions, request retrains, hot-swap models."""

from __future__ import annotations

import argparse
import sys

from utils.predictor_service import run
from utils.service import run_service
from utils.settings import PredictorSettings, add_common_arguments, common_from_args, positive_int


def parse_settings(argv: list[str]) -> PredictorSettings:
    defaults = PredictorSettings(common=None)
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    parser.add_argument(
        "--retrain-every",
        type=positive_int,
        default=defaults.retrain_every,
        help="labelled observations between retrain requests (counted over all predictors)",
    )
    parser.add_argument("--group-id", default=defaults.group_id, help="consumer group of the predictors")
    parser.add_argument(
        "--max-batch", type=positive_int, default=defaults.max_batch, help="most records scored per poll"
    )
    parser.add_argument(
        "--max-message-bytes",
        type=positive_int,
        default=defaults.max_message_bytes,
        help="larger requests are answered with error too_large",
    )
    parser.add_argument("--metrics-port", type=int, default=defaults.metrics_port, help="Prometheus /metrics (0: off)")
    parser.add_argument(
        "--live-window", type=positive_int, default=defaults.live_window, help="labelled requests in live quality"
    )
    parser.add_argument(
        "--report-interval", type=float, default=defaults.report_interval_s, help="seconds between live reports"
    )
    parser.add_argument(
        "--model-source",
        choices=("local", "mlflow"),
        default=defaults.model_source,
        help="where versions come from: the --model-store folder, or the MLflow registry (cached in it)",
    )
    args = parser.parse_args(argv)
    return PredictorSettings(
        common=common_from_args(args),
        group_id=args.group_id,
        retrain_every=args.retrain_every,
        max_batch=args.max_batch,
        max_message_bytes=args.max_message_bytes,
        metrics_port=args.metrics_port,
        live_window=args.live_window,
        report_interval_s=args.report_interval,
        model_source=args.model_source,
    )


if __name__ == "__main__":
    settings = parse_settings(sys.argv[1:])
    sys.exit(run_service("predictor", run, settings))
