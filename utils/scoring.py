"""A model version ready to serve: LightGBM booster, preprocessor and the form it takes (its spec),
verified before use, and optionally its compiled form (utils/compiled_cache.py), which gives the
same probabilities faster."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np

from utils.compiled_cache import CompiledModel
from utils.data import default_spec
from utils.features import Preprocessor, PreprocessorFormatError
from utils.form import Form
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE, REFERENCE_FILE, SPEC_FILE, ModelStore, ModelStoreError
from utils.spec import DatasetSpec, SpecError, spec_from_text

# Probability at or above which a request is answered positive (prediction 1); used by serving,
# live quality, holdout metrics and drift alike.
DECISION_THRESHOLD = 0.5
# Below this many rows, LightGBM's thread start-up costs more than it saves.
ROWS_PER_EXTRA_THREAD = 2000


@dataclass(frozen=True)
class Reference:
    """Holdout rows and what LightGBM scored for them when the version was made: a compiled form
    must reproduce these scores before it serves (predict/compiled_switch.py)."""

    records: tuple[dict[str, Any], ...]
    scores: np.ndarray

    def to_json(self) -> str:
        return json.dumps({"records": list(self.records), "scores": self.scores.tolist()})

    @classmethod
    def from_json(cls, text: str) -> Reference:
        state = json.loads(text)
        records, scores = tuple(state["records"]), np.asarray(state["scores"], dtype=np.float64)
        if len(records) != len(scores) or not all(isinstance(record, dict) for record in records):
            raise ValueError("reference rows and scores do not pair up")
        return cls(records, scores)


@dataclass(frozen=True)
class Scorer:
    version: int
    booster: lgb.Booster
    preprocessor: Preprocessor
    form: Form  # validates the requests this version scores
    model_text: bytes = b""  # the verified model.txt, which names the compiled form in its cache
    compiled: CompiledModel | None = None  # when set, scores instead of the booster
    reference: Reference | None = None

    @property
    def spec(self) -> DatasetSpec:
        return self.form.spec

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.preprocessor.layout.names

    @property
    def engine(self) -> str:
        return "compiled" if self.compiled is not None else "lightgbm"

    def with_compiled(self, compiled: CompiledModel) -> Scorer:
        return replace(self, compiled=compiled)

    def transform(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The model's input matrix for these forms."""
        return self.preprocessor.transform_records(records)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities of the positive class for a transformed matrix."""
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
        """SHAP values per row: one column per feature (`feature_names`), then the bias; each row sums
        to the raw score (log-odds). Always LightGBM's: a compiled form only predicts."""
        return np.asarray(self.booster.predict(matrix, pred_contrib=True, num_threads=1))

    def score(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(0/1 predictions, probabilities of the positive class)."""
        probabilities = self.predict_proba(records)
        return (probabilities >= DECISION_THRESHOLD).astype(np.int64), probabilities


def spec_of(version: int, files: Mapping[str, bytes]) -> DatasetSpec:
    """The spec a version's files carry; Adult's for versions from before specs."""
    if SPEC_FILE not in files:
        return default_spec()
    try:
        return spec_from_text(files[SPEC_FILE].decode("utf-8"))
    except (SpecError, UnicodeDecodeError) as error:
        raise ModelStoreError(f"version {version}: unusable {SPEC_FILE} ({error})") from error


def scorer_from_files(version: int, files: Mapping[str, bytes]) -> Scorer:
    """Parse and smoke-test a version's files; raises ModelStoreError if it must not serve."""
    spec = spec_of(version, files)
    try:
        preprocessor = Preprocessor.from_json(files[PREPROCESSOR_FILE].decode("utf-8"), spec)
        booster = lgb.Booster(model_str=files[MODEL_FILE].decode("utf-8"))
        reference = Reference.from_json(files[REFERENCE_FILE].decode("utf-8")) if REFERENCE_FILE in files else None
    except (PreprocessorFormatError, lgb.basic.LightGBMError, UnicodeDecodeError, KeyError, ValueError) as error:
        raise ModelStoreError(f"version {version}: cannot load ({error})") from error
    names = preprocessor.layout.names
    if booster.num_feature() != len(names):
        raise ModelStoreError(
            f"version {version}: model expects {booster.num_feature()} features, the preprocessor makes {len(names)}"
        )
    scorer = Scorer(version, booster, preprocessor, Form(spec), files[MODEL_FILE], reference=reference)
    smoke = [reference.records[0]] if reference is not None and reference.records else [preprocessor.sample_record()]
    try:
        probability = float(scorer.predict_proba(smoke)[0])
    except Exception as error:  # a broken model can fail in many ways inside LightGBM
        raise ModelStoreError(f"version {version}: smoke prediction failed ({error!r})") from error
    if not 0.0 <= probability <= 1.0:
        raise ModelStoreError(f"version {version}: smoke prediction gave {probability}")
    return scorer


def load_scorer(store: ModelStore, version: int) -> Scorer:
    return scorer_from_files(version, store.read_verified(version))
