"""Long-running: consume retrain requests, retrain and tune, log to MLflow, announce new versions."""

import sys

from train.service import run
from utils.cli import main
from utils.settings import TrainerSettings

if __name__ == "__main__":
    sys.exit(main("trainer", TrainerSettings, run, __doc__))
