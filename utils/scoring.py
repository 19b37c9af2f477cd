"""A model version ready to serve: LightGBM booster + preprocessor, verified before use, and
optionally its compiled form (utils/compiled_cache.py), which gives the same probabilities faster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np

from utils.compiled_cache import CompiledModel
from utils.features import FEATURE_NAMES, Preprocessor, PreprocessorFormatError
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE, ModelStore, ModelStoreError

# A plausible form, scored once before a version may serve.
SMOKE_RECORD: dict[str, Any] = {
    "age": 39.0,
    "workclass": "State-gov",
    "fnlwgt": 77516.0,
    "education": "Bachelors",
    "education_num": 13.0,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "gender": "Male",
    "capital_gain": 2174.0,
    "capital_loss": 0.0,
    "hours_per_week": 40.0,
    "native_country": "United-States",
}
# Probability at or above which a request is answered "high income" (prediction 1); used by
# serving, live quality, holdout metrics and drift alike.
DECISION_THRESHOLD = 0.5
# Below this many rows, LightGBM's thread start-up costs more than it saves.
ROWS_PER_EXTRA_THREAD = 2000


@dataclass(frozen=True)
class Scorer:
    version: int
    booster: lgb.Booster
    preprocessor: Preprocessor
    model_text: bytes = b""  # the verified model.txt, which names the compiled form in its cache
    compiled: CompiledModel | None = None  # when set, scores instead of the booster

    @property
    def engine(self) -> str:
        return "compiled" if self.compiled is not None else "lightgbm"

    def with_compiled(self, compiled: CompiledModel) -> Scorer:
        return replace(self, compiled=compiled)

    def transform(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The model's input matrix for these forms."""
        return self.preprocessor.transform_records(records)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities of the high-income class for a transformed matrix."""
        if self.compiled is not None:
            return self.compiled.predict(matrix)
        return self.predict_with_lightgbm(matrix)

    def predict_with_lightgbm(self, matrix: np.ndarray) -> np.ndarray:
        """The booster's probabilities, whatever engine serves (the reference the compiled form must match)."""
        threads = max(1, min(4, len(matrix) // ROWS_PER_EXTRA_THREAD))
        return np.asarray(self.booster.predict(matrix, num_threads=threads))

    def predict_proba(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.predict_matrix(self.transform(records))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP values per row: one column per feature (FEATURE_NAMES), then the bias; each row sums
        to the raw score (log-odds). Always LightGBM's: a compiled form only predicts."""
        return np.asarray(self.booster.predict(matrix, pred_contrib=True, num_threads=1))

    def score(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(0/1 predictions, probabilities of the high-income class)."""
        probabilities = self.predict_proba(records)
        return (probabilities >= DECISION_THRESHOLD).astype(np.int64), probabilities


def scorer_from_files(version: int, files: Mapping[str, bytes]) -> Scorer:
    """Parse and smoke-test a version's files; raises ModelStoreError if it must not serve."""
    try:
        preprocessor = Preprocessor.from_json(files[PREPROCESSOR_FILE].decode("utf-8"))
        booster = lgb.Booster(model_str=files[MODEL_FILE].decode("utf-8"))
    except (PreprocessorFormatError, lgb.basic.LightGBMError, UnicodeDecodeError, KeyError) as error:
        raise ModelStoreError(f"version {version}: cannot load ({error})") from error
    if booster.num_feature() != len(FEATURE_NAMES):
        raise ModelStoreError(
            f"version {version}: model expects {booster.num_feature()} features, "
            f"the preprocessor makes {len(FEATURE_NAMES)}"
        )
    scorer = Scorer(version, booster, preprocessor, files[MODEL_FILE])
    try:
        probability = float(scorer.predict_proba([SMOKE_RECORD])[0])
    except Exception as error:  # a broken model can fail in many ways inside LightGBM
        raise ModelStoreError(f"version {version}: smoke prediction failed ({error!r})") from error
    if not 0.0 <= probability <= 1.0:
        raise ModelStoreError(f"version {version}: smoke prediction gave {probability}")
    return scorer


def load_scorer(store: ModelStore, version: int) -> Scorer:
    return scorer_from_files(version, store.read_verified(version))
