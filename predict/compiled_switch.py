"""Moving a serving version to its compiled form (utils/compiled_cache.py) without ever waiting for it.

A version always starts serving on LightGBM. In the background its compiled object is loaded from
the cache (built first if needed, in a child process) and scores the version's reference rows
(holdout rows whose LightGBM scores were stored with the version); only if every row agrees within
`TOLERANCE` does the compiled form take over. Anything else (no
compiler, a failed build, a digest or a score that does not match) leaves LightGBM serving.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from utils.compiled_cache import (
    BUILD_NICENESS,
    DEFAULT_BUILD_TIMEOUT_S,
    TOLERANCE,
    BuildFailed,
    CompiledCache,
    CompilerUnavailable,
    CorruptEntry,
    rejection,
)
from utils.scoring import Scorer

log = logging.getLogger(__name__)

SAMPLE_ROWS = 2000


class CompiledFormRefused(RuntimeError):
    """The compiled form will not serve this version; `reason` is one of unavailable, build_failed,
    cache_corrupt, mismatch (the Prometheus label)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class CompiledSwitch:
    def __init__(
        self, cache: CompiledCache, build_timeout_s: float = DEFAULT_BUILD_TIMEOUT_S, niceness: int = BUILD_NICENESS
    ):
        self.cache = cache
        self.build_timeout_s = build_timeout_s
        self.niceness = niceness

    def of(self, scorer: Scorer) -> Scorer:
        """`scorer` scoring with its compiled form; CompiledFormRefused if it must stay on LightGBM."""
        try:
            compiled = self.cache.load(scorer.model_text)
            if compiled is None:
                log.info("compiling model version=%s (LightGBM serves meanwhile)", scorer.version)
                seconds = self.cache.build(scorer.model_text, self.build_timeout_s, self.niceness)
                log.info("model compiled version=%s seconds=%.1f", scorer.version, seconds)
                compiled = self.cache.load(scorer.model_text)
        except CompilerUnavailable as error:
            raise CompiledFormRefused("unavailable", str(error)) from error
        except BuildFailed as error:
            raise CompiledFormRefused("build_failed", str(error)) from error
        except CorruptEntry as error:
            raise CompiledFormRefused("cache_corrupt", str(error)) from error
        if compiled is None:
            raise CompiledFormRefused("build_failed", "the build finished but left no cache entry")
        records, expected = check_rows(scorer)
        refused = rejection(expected, compiled.predict(scorer.transform(records)), TOLERANCE)
        if refused is not None:
            raise CompiledFormRefused("mismatch", refused)
        return scorer.with_compiled(compiled)


def check_rows(scorer: Scorer) -> tuple[Sequence[Mapping[str, Any]], np.ndarray]:
    """Rows and the scores a compiled form must give for them: the version's reference (holdout rows
    and LightGBM's scores, stored when it was made: one comparison, no LightGBM call here), or, for a
    version from before references, rows drawn over its preprocessor's ranges and LightGBM's scores."""
    if scorer.reference is not None:
        return scorer.reference.records, scorer.reference.scores
    records = scorer.preprocessor.sample_records(SAMPLE_ROWS)
    # One thread: serving keeps the other core.
    return records, np.asarray(scorer.booster.predict(scorer.transform(records), num_threads=1))
