"""Run once: load the Adult data, tune LightGBM, log to MLflow, save the first model version."""

from __future__ import annotations

import argparse
import sys

from train.initial_model import run
from utils.service import run_service
from utils.settings import (
    INITIAL_TUNING,
    InitializeSettings,
    add_common_arguments,
    add_registry_arguments,
    add_tuning_arguments,
    common_from_args,
    default,
    tuning_from_args,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    add_tuning_arguments(parser, INITIAL_TUNING)
    add_registry_arguments(parser)
    parser.add_argument(
        "--download",
        action="store_true",
        help="fetch the data from UCI instead of the bundled copy (digests checked either way)",
    )
    parser.add_argument("--force", action="store_true", help="train a new version even if one already serves")
    parser.add_argument(
        "--keep-versions",
        type=int,
        default=default(InitializeSettings, "keep_versions"),
        help="model versions kept in the store",
    )
    return parser


def parse_settings(argv: list[str]) -> InitializeSettings:
    parser = build_parser()
    args = parser.parse_args(argv)
    return InitializeSettings(
        common=common_from_args(args),
        tuning=tuning_from_args(args, parser),
        download=args.download,
        experiment=args.experiment,
        registered_model=args.registered_model,
        keep_versions=args.keep_versions,
        force=args.force,
    )


if __name__ == "__main__":
    sys.exit(run_service("initialize", run, parse_settings(sys.argv[1:])))
