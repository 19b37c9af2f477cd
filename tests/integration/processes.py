"""Real service processes for integration tests: start, wait for a log line, stop, kill -9."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(self, script: str, args: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self.name = script
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, script, *args], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout_s: float = 120, count: int = 1) -> re.Match:
        """Wait until `pattern` has appeared `count` times in the log; fail early if the process died."""
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            matches = list(regex.finditer(self.log_text()))
            if len(matches) >= count:
                return matches[count - 1]
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: no {pattern!r} x{count} within {timeout_s}s:\n{self.tail()}")

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
