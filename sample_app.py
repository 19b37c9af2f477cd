"""Stream users from adult.test into the pipeline and print the action taken for each prediction."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sample.client import run
from utils.service import run_service
from utils.settings import SampleAppSettings, add_common_arguments, common_from_args, default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    parser.add_argument("--n", type=int, default=default(SampleAppSettings, "n"), help="users to send")
    parser.add_argument(
        "--rate",
        type=float,
        default=default(SampleAppSettings, "rate"),
        help="requests per second (0: as fast as possible)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=default(SampleAppSettings, "timeout_s"),
        help="seconds to wait for outstanding answers after the last request",
    )
    parser.add_argument(
        "--start",
        type=int,
        default=default(SampleAppSettings, "start"),
        help="first row of the streamed half of adult.test",
    )
    parser.add_argument("--summary-json", type=Path, default=None, help="also write the summary to this file")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument(
        "--explain", action="store_true", help="ask why, and print the reasons for each 'send offer' answer"
    )
    return parser


def parse_settings(argv: list[str]) -> SampleAppSettings:
    args = build_parser().parse_args(argv)
    return SampleAppSettings(
        common=common_from_args(args),
        n=args.n,
        rate=args.rate,
        timeout_s=args.timeout,
        start=args.start,
        summary_json=args.summary_json,
        quiet=args.quiet,
        explain=args.explain,
    )


if __name__ == "__main__":
    sys.exit(run_service("sample_app", run, parse_settings(sys.argv[1:])))
