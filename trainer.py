"""Long-running: consume retrain requests, retrain and tune, log to MLflow, announce new versions."""

from __future__ import annotations

import argparse
import sys

from train.trainer_service import run
from utils.service import run_service
from utils.settings import (
    DEFAULT_EXPERIMENT,
    DEFAULT_REGISTERED_MODEL,
    TrainerSettings,
    add_common_arguments,
    add_tuning_arguments,
    common_from_args,
    positive_int,
    tuning_from_args,
)


def parse_settings(argv: list[str]) -> TrainerSettings:
    defaults = TrainerSettings(common=None, tuning=None)
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    # One thread by default: the predictor keeps the other core while a retrain runs.
    add_tuning_arguments(parser, max_evals=10, threads=1)
    parser.add_argument("--group-id", default=defaults.group_id, help="consumer group of the trainer")
    parser.add_argument(
        "--promotion-tolerance",
        type=float,
        default=defaults.promotion_tolerance,
        help="largest holdout-AUC drop that still promotes a new model",
    )
    parser.add_argument(
        "--max-observations",
        type=positive_int,
        default=defaults.max_observations,
        help="newest labelled observations used per retrain (bounds memory)",
    )
    parser.add_argument("--metrics-port", type=int, default=defaults.metrics_port, help="Prometheus /metrics (0: off)")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment")
    parser.add_argument("--registered-model", default=DEFAULT_REGISTERED_MODEL, help="MLflow registered model")
    parser.add_argument(
        "--keep-versions", type=int, default=defaults.keep_versions, help="model versions kept in the store"
    )
    args = parser.parse_args(argv)
    return TrainerSettings(
        common=common_from_args(args),
        tuning=tuning_from_args(args),
        group_id=args.group_id,
        promotion_tolerance=args.promotion_tolerance,
        max_observations=args.max_observations,
        metrics_port=args.metrics_port,
        experiment=args.experiment,
        registered_model=args.registered_model,
        keep_versions=args.keep_versions,
    )


if __name__ == "__main__":
    settings = parse_settings(sys.argv[1:])
    sys.exit(run_service("trainer", run, settings))
