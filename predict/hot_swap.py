"""Loads model versions in a background thread; the serving loop swaps them in between batches.

No request waits for a load: the loop only checks a queue, and a swap is one reference assignment.
A version that fails verification (checksums, schema, smoke prediction) is refused and the serving
model stays.

With a compiled form (`upgrade`, predict/compiled_switch.py), a second thread turns the serving version
into its compiled form once it is built and checked; that result is swapped in the same way, and
only if the version it belongs to still serves.

During a rollout the swapper also holds the challenger (loaded the same way, scored by LightGBM);
when the rollout promotes it, it becomes the serving version in one assignment.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from predict.batch import Challenger
from predict.compiled_switch import CompiledFormRefused
from utils.compiled_cache import BUILD_NICENESS
from utils.messages.events import ChallengerStarted
from utils.messages.requests import CHALLENGER, CHAMPION
from utils.mlflow_outage import call_when_up
from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import Scorer, load_scorer
from utils.shutdown import StopRequested
from utils.spec import form_changes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    """A version loaded (`scorer` on LightGBM), refused (`error`), moved to its compiled form
    (`scorer.compiled` set) or kept on LightGBM (`compile_refused`: the Prometheus reason)."""

    version: int
    scorer: Scorer | None = None
    error: str | None = None
    compile_refused: str | None = None
    role: str = CHAMPION


class ModelSwapper:
    def __init__(
        self,
        store: ModelStore,
        initial: Scorer,
        fetch: Callable[[int], None] | None = None,
        tracking_uri: str = "",
        upgrade: Callable[[Scorer], Scorer] | None = None,
        niceness: int = BUILD_NICENESS,
    ):
        self.store = store
        self.niceness = niceness  # of the loader and compiler threads (--background-niceness)
        self.fetch = fetch  # brings a version into `store` first (e.g. from the MLflow registry)
        self.tracking_uri = tracking_uri
        self.upgrade = upgrade  # the compiled form of a scorer; raises CompiledFormRefused
        self._closing = threading.Event()
        self.current = initial
        self.rollout: ChallengerStarted | None = None
        self.challenger: Scorer | None = None  # loaded, for the rollout in progress
        self._wanted: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self._loaded: queue.Queue[LoadResult] = queue.Queue()
        self._to_compile: queue.Queue[Scorer | None] = queue.Queue()
        self._thread = threading.Thread(target=self._load_forever, name="model-loader", daemon=True)
        self._thread.start()
        self._compiler: threading.Thread | None = None
        if upgrade is not None:
            self._compiler = threading.Thread(target=self._compile_forever, name="model-compiler", daemon=True)
            self._compiler.start()
            self._to_compile.put(initial)

    def request(self, version: int) -> None:
        """Ask for `version` to be loaded and served; returns at once."""
        self._wanted.put((version, CHAMPION))

    def start_rollout(self, rollout: ChallengerStarted) -> None:
        """Put `rollout.version` on trial beside the serving version once it is loaded."""
        if self.rollout == rollout:
            return  # announced again (a trainer restart): nothing changes
        if rollout.version == self.current.version:
            log.warning("challenger ignored: it is the serving version version=%s", rollout.version)
            return
        if self.challenger is None or self.challenger.version != rollout.version:
            self.challenger = None
            self._wanted.put((rollout.version, CHALLENGER))
        self.rollout = rollout
        log.info("rollout started challenger=%s mode=%s canary_fraction=%s", *_describe(rollout))

    def end_rollout(self, version: int, promoted: bool) -> bool:
        """The trial of `version` is over; if promoted it serves from now on (swapped at once when
        loaded already). True if the serving version changed here."""
        loaded = self.challenger if self.challenger is not None and self.challenger.version == version else None
        if self.rollout is not None and self.rollout.version == version:
            self.rollout, self.challenger = None, None
            log.info("rollout ended challenger=%s promoted=%s", version, promoted)
        if not promoted or version == self.current.version:
            return False
        if loaded is None:
            self.request(version)
            return False
        previous, self.current = self.current, loaded
        log.info("model swapped from_version=%s to_version=%s (challenger promoted)", previous.version, version)
        say_if_the_form_changed(previous, loaded)
        if self.upgrade is not None:
            self._to_compile.put(loaded)
        return True

    def serving_challenger(self) -> Challenger | None:
        """What decide() needs of the rollout in progress, once its challenger is loaded."""
        if self.rollout is None or self.challenger is None:
            return None
        return Challenger(self.challenger, self.rollout.canary_fraction)

    def poll_loaded(self) -> list[LoadResult]:
        """Results finished since the last call; successful ones are already swapped in."""
        results: list[LoadResult] = []
        while True:
            try:
                result = self._loaded.get_nowait()
            except queue.Empty:
                return results
            if result.role == CHALLENGER:
                if result.scorer is not None and self.rollout is not None and self.rollout.version == result.version:
                    self.challenger = result.scorer
                    log.info("challenger loaded version=%s", result.version)
            elif result.scorer is not None and result.scorer.compiled is not None:
                if result.version != self.current.version:
                    continue  # a newer version serves already: its own compiled form will follow
                self.current = result.scorer
                log.info("scoring with the compiled form version=%s", result.version)
            elif result.scorer is not None and result.version != self.current.version:
                previous, self.current = self.current, result.scorer
                log.info("model swapped from_version=%s to_version=%s", previous.version, result.version)
                say_if_the_form_changed(previous, result.scorer)
            results.append(result)

    def close(self) -> None:
        self._closing.set()
        self._wanted.put(None)
        self._to_compile.put(None)
        self._thread.join(timeout=5)
        if self._compiler is not None:
            self._compiler.join(timeout=5)  # a build child still running finishes on its own

    def _fetch_when_up(self, version: int) -> None:
        """Fetch, waiting out an MLflow outage (the current version serves meanwhile)."""
        assert self.fetch is not None
        call_when_up(lambda: self.fetch(version), self.tracking_uri, self._closing)  # type: ignore[misc]

    def _load_forever(self) -> None:
        lower_thread_priority(self.niceness)
        while (wanted := self._wanted.get()) is not None:
            version, role = wanted
            if role == CHAMPION and version == self.current.version:
                continue
            try:
                if self.fetch is not None:
                    self._fetch_when_up(version)
                scorer = load_scorer(self.store, version)
                self._loaded.put(LoadResult(version, scorer=scorer, role=role))
                log.info("model version loaded version=%s role=%s", version, role)
                if self.upgrade is not None and role == CHAMPION:
                    self._to_compile.put(scorer)
            except ModelStoreError as error:
                log.error("model version refused version=%s reason=%s", version, error)
                self._loaded.put(LoadResult(version, error=str(error), role=role))
            except StopRequested:
                return
            except Exception as error:  # never let the loader thread die
                log.exception("model version failed to load version=%s", version)
                self._loaded.put(LoadResult(version, error=repr(error), role=role))

    def _compile_forever(self) -> None:
        assert self.upgrade is not None
        lower_thread_priority(self.niceness)
        while (scorer := self._to_compile.get()) is not None:
            if not self._to_compile.empty():
                continue  # a newer version is queued: compiling this one would be wasted
            try:
                self._loaded.put(LoadResult(scorer.version, scorer=self.upgrade(scorer)))
            except CompiledFormRefused as refused:
                log.warning(
                    "compiled form not used, LightGBM serves version=%s reason=%s detail=%s",
                    scorer.version,
                    refused.reason,
                    refused,
                )
                self._loaded.put(LoadResult(scorer.version, compile_refused=refused.reason))
            except Exception:  # never let the compiler thread die
                log.exception("compiled form failed version=%s", scorer.version)
                self._loaded.put(LoadResult(scorer.version, compile_refused="build_failed"))


def say_if_the_form_changed(previous: Scorer, current: Scorer) -> None:
    """A version of another lineage (another spec, from `initialize.py --force`) takes other requests."""
    changes = form_changes(previous.spec, current.spec)
    if changes:
        log.warning(
            "the form changed with version %s (%s): requests of the old form are answered missing_field or "
            "unknown_field from now on",
            current.version,
            changes,
        )


def _describe(rollout: ChallengerStarted) -> tuple[int, str, float]:
    return rollout.version, rollout.mode, rollout.canary_fraction


def lower_thread_priority(niceness: int) -> None:
    """Let the serving loop win the cores over this background thread (Linux: priority is per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except OSError as error:  # not allowed or not supported: only a latency concern
        log.debug("thread priority unchanged error=%r", error)
