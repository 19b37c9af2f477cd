"""Run once: load the Adult data, tune LightGBM, log to MLflow, save the first model version."""

import sys

from train.initial_model import run
from utils.cli import main
from utils.settings import InitializeSettings

if __name__ == "__main__":
    sys.exit(main("initialize", InitializeSettings, run, __doc__))
