"""Moving a serving version to its compiled form (utils/compiled_cache.py) without ever waiting for it.

A version always starts serving on LightGBM. In the background its compiled object is loaded from
the cache (built first if needed, in a child process) and scores the fixed holdout beside LightGBM;
only if every row agrees within `TOLERANCE` does the compiled form take over. Anything else (no
compiler, a failed build, a digest or a score that does not match) leaves LightGBM serving.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from utils.compiled_cache import (
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


class CompiledFormRefused(RuntimeError):
    """The compiled form will not serve this version; `reason` is one of unavailable, build_failed,
    cache_corrupt, mismatch (the Prometheus label)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class CompiledSwitch:
    def __init__(
        self,
        cache: CompiledCache,
        holdout: Sequence[Mapping[str, Any]],
        build_timeout_s: float = DEFAULT_BUILD_TIMEOUT_S,
    ):
        self.cache = cache
        self.holdout = holdout
        self.build_timeout_s = build_timeout_s

    def of(self, scorer: Scorer) -> Scorer:
        """`scorer` scoring with its compiled form; CompiledFormRefused if it must stay on LightGBM."""
        try:
            compiled = self.cache.load(scorer.model_text)
            if compiled is None:
                log.info("compiling model version=%s (LightGBM serves meanwhile)", scorer.version)
                seconds = self.cache.build(scorer.model_text, self.build_timeout_s)
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
        matrix = scorer.transform(self.holdout)
        reference = np.asarray(
            scorer.booster.predict(matrix, num_threads=1)
        )  # one thread: serving keeps the other core
        refused = rejection(reference, compiled.predict(matrix), TOLERANCE)
        if refused is not None:
            raise CompiledFormRefused("mismatch", refused)
        return scorer.with_compiled(compiled)
