"""Judge a model version against another (default: the current one) on the observations log, with the
rollouts' own judgement: the sequential verdict, its pairs and interval, and DeLong's figures."""

from __future__ import annotations

import sys

from train.backtest import run
from utils.cli import main
from utils.settings import BacktestSettings

if __name__ == "__main__":
    sys.exit(main("backtest", BacktestSettings, run, __doc__))
