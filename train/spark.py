"""The Spark session a training service keeps while it runs, for Hyperopt's `SparkTrials`.

With a master (`--spark-master`), each Hyperopt trial is one Spark task on an executor; without
one, nothing here runs and pyspark need not be installed. The session is opened once per service
(tens of seconds on a real cluster), not once per retrain.

Spark's own output (the JVM's log lines, warnings) goes to `logs/spark-<service>.log`, not the
terminal. Our code reaches the executors as a zip the driver ships (`addPyFile`), so a cluster's
workers need only the project's requirements installed, at the interpreter `--pyspark-python`
names. Spark moves Python functions and broadcast values between its driver and executors with
cloudpickle: that is Spark's own channel between processes of one application; nothing read from
Kafka is ever unpickled.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from utils.settings import PROJECT_ROOT, SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# The packages a trial imports on an executor (train.tune and what it imports).
SHIPPED_PACKAGES = ("train", "utils")


def spark_conf(settings: SparkSettings, service: str) -> dict[str, str]:
    """The Spark configuration of a service's session."""
    return {
        "spark.master": str(settings.master),
        "spark.app.name": f"adult-income-{service}",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        # A trial's LightGBM runs on the task's core(s): one trial per task slot.
        "spark.task.cpus": "1",
    }


@contextmanager
def spark_session(settings: SparkSettings, service: str) -> Iterator[SparkSession | None]:
    """A session on `settings.master` for the duration of the block; None without a master."""
    if settings.master is None:
        yield None
        return
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"spark-{service}.log"
    # The executors start this interpreter; SparkContext reads it from the environment.
    os.environ["PYSPARK_PYTHON"] = settings.python
    logging.getLogger("py4j").setLevel(logging.WARNING)
    quiet_retries = QuietPy4jRetries()
    logging.getLogger().addFilter(quiet_retries)
    conf = SparkConf(loadDefaults=True).setAll(list(spark_conf(settings, service).items()))
    with open(log_path, "ab") as spark_log, tempfile.TemporaryDirectory(prefix="pipeline-spark-") as scratch:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": spark_log, "stderr": subprocess.STDOUT})
        context = SparkContext(conf=conf, gateway=gateway)
        try:
            context.addPyFile(str(ship_code(Path(scratch))))
            log.info(
                "spark session started master=%s default_parallelism=%s log=%s",
                settings.master,
                context.defaultParallelism,
                log_path,
            )
            with warnings.catch_warnings():
                # hyperopt runs each trial from a thread of its own; pyspark warns that such a
                # thread has no session tags to inherit, which we do not use.
                warnings.filterwarnings("ignore", message="Spark session is not provided")
                yield SparkSession(context)
        finally:
            context.stop()
            logging.getLogger().removeFilter(quiet_retries)
            log.info("spark session stopped master=%s", settings.master)


class QuietPy4jRetries(logging.Filter):
    """py4j reports each retry of a pooled connection the JVM closed, traceback included, at INFO on
    the root logger; the retry succeeds, so it is not news. Its warnings and errors still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or f"{os.sep}py4j{os.sep}" not in record.pathname


def ship_code(folder: Path) -> Path:
    """A zip of the packages a trial imports, for the executors' Python path."""
    archive = folder / "pipeline.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for package in SHIPPED_PACKAGES:
            for source in sorted((PROJECT_ROOT / package).rglob("*.py")):
                bundle.write(source, source.relative_to(PROJECT_ROOT).as_posix())
    return archive
