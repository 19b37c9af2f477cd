"""Serve a model version that is in the store (an earlier one, usually): every predictor swaps to it.
Without a version, during a rollout: reject the challenger, the champion serves on."""

from __future__ import annotations

import argparse
import sys

from train.rollback import run
from utils.service import run_service
from utils.settings import RollbackSettings, add_common_arguments, add_registry_arguments, common_from_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "version", type=int, nargs="?", help="model version to serve (see models/ or MLflow); none: end the rollout"
    )
    add_common_arguments(parser)
    add_registry_arguments(parser)
    return parser


def parse_settings(argv: list[str]) -> RollbackSettings:
    args = build_parser().parse_args(argv)
    return RollbackSettings(
        common=common_from_args(args),
        version=args.version,
        experiment=args.experiment,
        registered_model=args.registered_model,
    )


if __name__ == "__main__":
    sys.exit(run_service("rollback", run, parse_settings(sys.argv[1:])))
