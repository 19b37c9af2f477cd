"""Promote the challenger of the rollout in progress now: every predictor serves it."""

from __future__ import annotations

import argparse
import sys

from train.promote import run
from utils.service import run_service
from utils.settings import PromoteSettings, add_common_arguments, add_registry_arguments, common_from_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    add_registry_arguments(parser)
    return parser


def parse_settings(argv: list[str]) -> PromoteSettings:
    args = build_parser().parse_args(argv)
    return PromoteSettings(
        common=common_from_args(args), registered_model=args.registered_model, experiment=args.experiment
    )


if __name__ == "__main__":
    sys.exit(run_service("promote", run, parse_settings(sys.argv[1:])))
