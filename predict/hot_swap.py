"""Loads model versions in a background thread; the serving loop swaps them in between batches.

No request waits for a load: the loop only checks a queue, and a swap is one reference assignment.
A version that fails verification (checksums, schema, smoke prediction) is refused and the serving
model stays.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import Scorer, load_scorer
from utils.shutdown import StopRequested
from utils.tracking import call_when_up

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    version: int
    scorer: Scorer | None = None
    error: str | None = None


class ModelSwapper:
    def __init__(
        self,
        store: ModelStore,
        initial: Scorer,
        fetch: Callable[[int], None] | None = None,
        tracking_uri: str = "",
    ):
        self.store = store
        self.fetch = fetch  # brings a version into `store` first (e.g. from the MLflow registry)
        self.tracking_uri = tracking_uri
        self._closing = threading.Event()
        self.current = initial
        self._wanted: queue.Queue[int | None] = queue.Queue()
        self._loaded: queue.Queue[LoadResult] = queue.Queue()
        self._thread = threading.Thread(target=self._load_forever, name="model-loader", daemon=True)
        self._thread.start()

    def request(self, version: int) -> None:
        """Ask for `version` to be loaded; returns at once."""
        self._wanted.put(version)

    def poll_loaded(self) -> list[LoadResult]:
        """Results finished since the last call; successful ones are already swapped in."""
        results: list[LoadResult] = []
        while True:
            try:
                result = self._loaded.get_nowait()
            except queue.Empty:
                return results
            if result.scorer is not None and result.version != self.current.version:
                previous, self.current = self.current.version, result.scorer
                log.info("model swapped from_version=%s to_version=%s", previous, result.version)
            results.append(result)

    def close(self) -> None:
        self._closing.set()
        self._wanted.put(None)
        self._thread.join(timeout=5)

    def _fetch_when_up(self, version: int) -> None:
        """Fetch, waiting out an MLflow outage (the current version serves meanwhile)."""
        assert self.fetch is not None
        call_when_up(lambda: self.fetch(version), self.tracking_uri, self._closing)  # type: ignore[misc]

    def _load_forever(self) -> None:
        while (version := self._wanted.get()) is not None:
            if version == self.current.version:
                continue
            try:
                if self.fetch is not None:
                    self._fetch_when_up(version)
                self._loaded.put(LoadResult(version, scorer=load_scorer(self.store, version)))
                log.info("model version loaded version=%s", version)
            except ModelStoreError as error:
                log.error("model version refused version=%s reason=%s", version, error)
                self._loaded.put(LoadResult(version, error=str(error)))
            except StopRequested:
                return
            except Exception as error:  # never let the loader thread die
                log.exception("model version failed to load version=%s", version)
                self._loaded.put(LoadResult(version, error=repr(error)))
