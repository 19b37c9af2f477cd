"""The parts of running trials on Spark that need no Spark: configuration, shipped code, timings."""

import logging
import zipfile

import pytest

from train.pipeline import seconds_metrics, timed
from train.spark import SHIPPED_PACKAGES, QuietPy4jRetries, ship_code, spark_conf, spark_session
from train.tune import tune
from utils.settings import SparkSettings, TuningSettings


def test_no_master_means_no_session_and_no_pyspark_needed():
    with spark_session(SparkSettings(master=None), "unit") as session:
        assert session is None


@pytest.mark.parametrize("master", ["local[2]", "spark://127.0.0.1:7077", "yarn"])
def test_conf_names_the_master_and_keeps_the_terminal_quiet(master):
    conf = spark_conf(SparkSettings(master=master), "trainer")
    assert conf["spark.master"] == master
    assert conf["spark.app.name"] == "adult-income-trainer"
    assert conf["spark.ui.showConsoleProgress"] == "false"
    assert conf["spark.task.cpus"] == "1"


def test_shipped_code_holds_the_trial_and_what_it_imports(tmp_path):
    with zipfile.ZipFile(ship_code(tmp_path)) as bundle:
        names = set(bundle.namelist())
    assert {"train/tune.py", "train/__init__.py", "utils/features.py", "utils/settings.py"} <= names
    assert all(name.split("/")[0] in SHIPPED_PACKAGES and name.endswith(".py") for name in names)


@pytest.mark.parametrize("hyper", ["skopt", "hyperparameterhunter"])
def test_only_hyperopt_runs_on_spark(hyper):
    with pytest.raises(ValueError, match="hyperopt only"):
        tune(None, TuningSettings(hyper=hyper, max_evals=1), spark=object())  # type: ignore[arg-type]


def test_timed_adds_up_repeated_phases():
    timings: dict[str, float] = {}
    for _ in range(2):
        with timed(timings, "mlflow"):
            pass
    with pytest.raises(RuntimeError), timed(timings, "tuning"):
        raise RuntimeError("a failed phase still counts")
    assert set(timings) == {"mlflow", "tuning"}
    assert all(seconds >= 0 for seconds in timings.values())


def test_seconds_metrics_leave_out_the_phase_still_running():
    assert seconds_metrics({"tuning": 3.0, "mlflow": 1.0, "read_observations": 2.0}) == {
        "seconds_tuning": 3.0,
        "seconds_read_observations": 2.0,
    }


@pytest.mark.parametrize(
    "pathname, level, kept",
    [
        ("/venv/site-packages/py4j/java_gateway.py", logging.INFO, False),
        ("/venv/site-packages/py4j/java_gateway.py", logging.ERROR, True),
        ("/work/main/train/service.py", logging.INFO, True),
    ],
)
def test_only_py4j_retry_chatter_is_dropped(pathname, level, kept):
    record = logging.LogRecord("root", level, pathname, 1, "Exception while sending command.", None, None)
    assert QuietPy4jRetries().filter(record) is kept
