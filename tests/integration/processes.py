"""Real service processes for integration tests: start, wait for an outcome, stop, kill -9.

Tests wait on what a service does (a metric on its /metrics endpoint, a record on a topic, a file
in the store), never on the wording of its logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.metrics import scrape

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(
        self, script: str, args: list[str], env: dict[str, str], log_path: Path, metrics_port: int | None = None
    ):
        self.log_path = log_path
        self.name = script
        self.metrics_port = metrics_port  # its /metrics endpoint, when it has one
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, script, *args], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> dict[str, float]:
        """Its /metrics samples (name{label=value,...} -> value); {} while the endpoint is not up."""
        assert self.metrics_port is not None, f"{self.name} was started without a metrics port"
        try:
            return scrape(self.metrics_port)
        except OSError:
            return {}

    def metric(self, sample: str, default: float = 0.0) -> float:
        """One sample, e.g. `pipeline_model_version` or `pipeline_answers_total{role=challenger}`."""
        return self.metrics().get(sample, default)

    def wait_for_metric(self, sample: str, predicate: Callable[[float], bool] = bool, timeout_s: float = 120) -> float:
        """Wait until `predicate(value of sample)` holds; fail early if the process died."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.metrics().get(sample)
            if value is not None and predicate(value):
                return value
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: {sample} is {value} after {timeout_s}s:\n{self.tail()}")

    def wait_until_ready(self, timeout_s: float = 120) -> None:
        """Until its loop runs (set-up done: model loaded, topics there, group joined or joining)."""
        self.wait_for_metric("pipeline_ready", lambda value: value == 1, timeout_s)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout_s: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


def run_script(
    script: str, args: list[str], env: dict[str, str], timeout_s: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )
