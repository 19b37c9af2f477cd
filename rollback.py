"""Roll the predictors back (or forward) to a model version that is in the store."""

from __future__ import annotations

import argparse
import sys

from train.rollback import run
from utils.service import run_service
from utils.settings import RollbackSettings, add_common_arguments, common_from_args


def parse_settings(argv: list[str]) -> RollbackSettings:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("version", type=int, help="model version to serve (see models/ or MLflow)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    return RollbackSettings(common=common_from_args(args), version=args.version)


if __name__ == "__main__":
    settings = parse_settings(sys.argv[1:])
    sys.exit(run_service("rollback", run, settings))
