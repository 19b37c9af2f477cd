"""Explained answers: contributions that add up to the model's raw score, for the requests that ask."""

import json

import lightgbm as lgb
import numpy as np
import pytest

from predict.batch import decide
from predict.explain import summarise
from utils.data import frame_to_records
from utils.kafka.interface import Record
from utils.scoring import scorer_from_files

LIMIT = 64 * 1024


@pytest.mark.parametrize(
    "row, top, expected_top, other",
    [
        ([0.5, -2.0, 0.1, 1.0, -0.3], 2, [("b", -2.0), ("a", 0.5)], 0.1),
        ([0.5, -2.0, 0.1, 1.0, -0.3], 10, [("b", -2.0), ("a", 0.5), ("c", 0.1)], 0.0),
        ([0.0, 0.0, 0.0, 0.7, 0.2], 1, [("a", 0.0)], 0.0),  # ties keep the column order
    ],
)
def test_summarise_keeps_the_largest_and_sums_the_rest(row, top, expected_top, other):
    names = ("a", "b", "c")
    row = np.array(row[:3] + [row[4]])  # three features, then the bias
    explanation = summarise(row, names, top)
    assert list(explanation.top) == expected_top
    assert explanation.other == pytest.approx(other)
    assert explanation.bias == pytest.approx(row[-1])
    assert sum(v for _, v in explanation.top) + explanation.other + explanation.bias == pytest.approx(
        explanation.raw_score
    )


def request(request_id, row, **extra):
    return Record("app", 0, 0, None, json.dumps({"request_id": request_id, "data": row, **extra}).encode())


def test_contributions_plus_bias_equal_the_raw_score_of_the_answer(small_model_files, adult):
    scorer = scorer_from_files(1, small_model_files)
    rows = frame_to_records(adult.stream.head(300), adult.spec)
    records = [request(f"r{i}", row, explain=True) for i, row in enumerate(rows)]
    outcome = decide(records, scorer, LIMIT, 5)
    booster = lgb.Booster(model_str=small_model_files["model.txt"].decode())
    raw = booster.predict(scorer.transform(rows), raw_score=True)
    assert len(outcome.answers) == 300
    for answer, expected_raw in zip(outcome.answers, raw, strict=True):
        explanation = answer.explanation
        assert explanation is not None and len(explanation.top) == 5
        total = sum(value for _, value in explanation.top) + explanation.other + explanation.bias
        assert abs(total - expected_raw) <= 1e-6
        assert abs(1 / (1 + np.exp(-explanation.raw_score)) - answer.probability) <= 1e-6
        assert {name for name, _ in explanation.top} <= set(scorer.feature_names)


def test_a_request_without_explain_gets_the_plain_answer(small_model_files, adult):
    scorer = scorer_from_files(1, small_model_files)
    row = frame_to_records(adult.stream.head(1), adult.spec)[0]
    [plain] = decide([request("p", row)], scorer, LIMIT, 5).answers
    assert set(plain.to_dict()) == {"request_id", "prediction", "probability", "model_version", "role"}
    [explained] = decide([request("e", row, explain=True)], scorer, LIMIT, 5).answers
    assert explained.probability == plain.probability


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_explain_must_be_a_boolean(small_model_files, adult, value):
    scorer = scorer_from_files(1, small_model_files)
    row = frame_to_records(adult.stream.head(1), adult.spec)[0]
    outcome = decide([request("x", row, explain=value)], scorer, LIMIT, 5)
    assert [(e.request_id, e.code) for e in outcome.errors] == [("x", "invalid_type")]
