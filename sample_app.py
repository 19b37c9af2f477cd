"""Stream users from adult.test into the pipeline and print the action taken for each prediction."""

import sys

from sample.client import run
from utils.cli import main
from utils.settings import SampleAppSettings

if __name__ == "__main__":
    sys.exit(main("sample_app", SampleAppSettings, run, __doc__))
