"""Answers that say why: a request's SHAP contributions, summarised. Pure: contributions in,
an `Explanation` out (the booster call that makes them is `Scorer.contributions`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from utils.messages.requests import Explanation


def summarise(contributions: np.ndarray, names: Sequence[str], top: int) -> Explanation:
    """One row of `pred_contrib` output (one value per feature, then the bias) as its `top`
    largest contributions by size, the rest summed, the bias and the raw score they add up to."""
    values, bias = contributions[:-1], float(contributions[-1])
    order = np.argsort(-np.abs(values), kind="stable")
    chosen = order[:top]
    return Explanation(
        raw_score=float(values.sum() + bias),
        bias=bias,
        top=tuple((names[index], float(values[index])) for index in chosen),
        other=float(values[order[top:]].sum()),
    )
