"""Long-running: score app events from Kafka, publish predictions, request retrains, hot-swap models."""

import sys

from predict.service import run
from utils.cli import main
from utils.settings import PredictorSettings

if __name__ == "__main__":
    sys.exit(main("predictor", PredictorSettings, run, __doc__))
