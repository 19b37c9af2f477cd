"""Long-running: consume retrain requests, retrain and tune, log to MLflow, announce new versions."""

from __future__ import annotations

import argparse
import sys

from train.service import run
from utils.service import run_service
from utils.settings import (
    RETRAIN_TUNING,
    TrainerSettings,
    add_common_arguments,
    add_registry_arguments,
    add_rollout_arguments,
    add_tuning_arguments,
    common_from_args,
    default,
    nonnegative_int,
    rollout_from_args,
    tuning_from_args,
)


def build_parser() -> argparse.ArgumentParser:
    def d(name: str):
        return default(TrainerSettings, name)

    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    add_tuning_arguments(parser, RETRAIN_TUNING)
    add_registry_arguments(parser)
    add_rollout_arguments(parser)
    parser.add_argument("--group-id", default=d("group_id"), help="consumer group of the trainer")
    parser.add_argument(
        "--promotion-tolerance",
        type=float,
        default=d("promotion_tolerance"),
        help="largest holdout-AUC drop that still promotes a new model",
    )
    parser.add_argument(
        "--max-observations",
        type=nonnegative_int,
        default=d("max_observations"),
        help="newest labelled observations used per retrain (bounds memory; 0: adult.data only)",
    )
    parser.add_argument("--metrics-port", type=int, default=d("metrics_port"), help="Prometheus /metrics (0: off)")
    parser.add_argument(
        "--keep-versions", type=int, default=d("keep_versions"), help="model versions kept in the store"
    )
    return parser


def parse_settings(argv: list[str]) -> TrainerSettings:
    parser = build_parser()
    args = parser.parse_args(argv)
    return TrainerSettings(
        common=common_from_args(args),
        tuning=tuning_from_args(args, parser),
        rollout=rollout_from_args(args),
        group_id=args.group_id,
        promotion_tolerance=args.promotion_tolerance,
        max_observations=args.max_observations,
        metrics_port=args.metrics_port,
        experiment=args.experiment,
        registered_model=args.registered_model,
        keep_versions=args.keep_versions,
    )


if __name__ == "__main__":
    sys.exit(run_service("trainer", run, parse_settings(sys.argv[1:])))
