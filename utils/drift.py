"""Population stability index (PSI): has the data the model sees moved away from the data it learnt on?

Shared by the trainer (each retrain's drift figures: the data file against the labelled observations)
and the predictor (the drift trigger: the serving version's reference rows against its last requests).
PSI compares the share of each sample in the same bins: below 0.1 is noise, 0.1-0.2 a moderate shift,
above 0.2 (`PSI_WARNING`) a shift worth retraining or investigating. PSI on a handful of rows is noisy and large;
callers should wait for a few hundred observations before acting on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from utils.scoring import DECISION_THRESHOLD
from utils.spec import DatasetSpec

PSI_MODERATE = 0.1
PSI_WARNING = 0.2
EPSILON = 1e-4  # floor of a bin's share, so that an empty bin costs a finite amount instead of inf
MISSING = "<missing>"  # the bucket of missing categories (null, in validated frames; "" and "?" too)
OTHER = "<other>"  # the bucket of categories the reference never saw


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bins. Counts or shares both work: each vector is normalised."""
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if expected.shape != actual.shape:
        raise ValueError(f"the two samples have different bins: {expected.shape} vs {actual.shape}")
    if expected.sum() <= 0 or actual.sum() <= 0:
        return 0.0  # an empty sample is no evidence of a shift
    e = np.maximum(expected / expected.sum(), EPSILON)
    a = np.maximum(actual / actual.sum(), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def _numbers(values: ArrayLike) -> np.ndarray:
    numbers = pd.to_numeric(pd.Series(np.asarray(values, dtype=object).ravel()), errors="coerce").to_numpy(float)
    return numbers[np.isfinite(numbers)]


def numeric_psi(reference: ArrayLike, new: ArrayLike, bins: int = 10) -> float:
    """PSI over the reference's quantile bins (deciles by default), so each holds ~1/bins of the reference.

    Bins are right-closed, and repeated edges merge: capital_gain, 0 for 92% of people, gets the two bins
    (-inf, 0] and (0, inf) rather than nine empty ones. The outer bins are open, so new values beyond the
    reference's range still count. Missing or non-numeric values are left out; an empty side gives 0.0.
    """
    ref, cur = _numbers(reference), _numbers(new)
    if ref.size == 0 or cur.size == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    width = edges.size + 1
    counts = [np.bincount(np.searchsorted(edges, x, side="left"), minlength=width) for x in (ref, cur)]
    return psi(counts[0], counts[1])


def _categories(values: Sequence[str | None] | pd.Series) -> pd.Series:
    series = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
    text = series.where(series.notna(), MISSING).astype(str).str.strip()
    return text.mask(text.isin(["", "?"]), MISSING)


def categorical_psi(reference: Sequence[str | None] | pd.Series, new: Sequence[str | None] | pd.Series) -> float:
    """PSI over the reference's categories plus one `OTHER` bucket for categories it never saw.

    Null, "" and "?" count as missing. An empty side gives 0.0.
    """
    ref, cur = _categories(reference), _categories(new)
    if ref.empty or cur.empty:
        return 0.0
    known = pd.Index(ref.unique())
    counts = [sample.where(sample.isin(known), OTHER).value_counts() for sample in (ref, cur)]
    bins = known.append(pd.Index([OTHER]))
    return psi(counts[0].reindex(bins, fill_value=0).to_numpy(), counts[1].reindex(bins, fill_value=0).to_numpy())


def feature_drift(spec: DatasetSpec, reference: pd.DataFrame, new: pd.DataFrame) -> dict[str, float]:
    """PSI of every field of the spec, in its order; {} when `new` has no rows (nothing to compare)."""
    if len(new) == 0:
        return {}
    drift = {}
    for item in spec.fields:
        if item.kind == "numeric":
            drift[item.name] = numeric_psi(reference[item.name], new[item.name])
        else:
            drift[item.name] = categorical_psi(reference[item.name], new[item.name])
    return drift


def prediction_shift(
    reference_probabilities: ArrayLike,
    new_probabilities: ArrayLike,
    bins: int = 10,
    threshold: float = DECISION_THRESHOLD,
) -> dict[str, float]:
    """How the model's answers moved, which needs no labels: PSI of the predicted probability over `bins`
    equal bins of [0, 1], and the change (new - reference) of the mean probability and of the share of
    positives at `threshold`. {} when either side is empty."""
    ref, cur = _numbers(reference_probabilities), _numbers(new_probabilities)
    if ref.size == 0 or cur.size == 0:
        return {}
    counts = [np.histogram(np.clip(p, 0.0, 1.0), bins=bins, range=(0.0, 1.0))[0] for p in (ref, cur)]
    return {
        "probability_psi": psi(counts[0], counts[1]),
        "mean_probability_shift": float(cur.mean() - ref.mean()),
        "positive_rate_shift": float((cur >= threshold).mean() - (ref >= threshold).mean()),
    }


def drifted(drift: dict[str, float], threshold: float = PSI_WARNING) -> list[str]:
    """Names whose PSI is above `threshold`, worst first: the features to look at before retraining."""
    return [name for name, value in sorted(drift.items(), key=lambda item: -item[1]) if value > threshold]
