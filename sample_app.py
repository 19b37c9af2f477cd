"""Stream users into the pipeline (the serving spec's rows, Adult's by default, or --data FILE.csv) and print
what each answer means."""

import sys

from sample.client import run
from utils.cli import main
from utils.settings import SampleAppSettings

if __name__ == "__main__":
    sys.exit(main("sample_app", SampleAppSettings, run, __doc__))
