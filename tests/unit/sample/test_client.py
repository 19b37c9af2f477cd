"""The sample app's tally of answers and how it prints them."""

import pytest

from sample.client import Tally, describe, describe_reasons
from utils.messages.requests import Explanation, Prediction, PredictionError


def tally_of(*sent: tuple[str, int]) -> Tally:
    tally = Tally()
    for request_id, label in sent:
        tally.sent_at[request_id] = 0.0
        tally.labels[request_id] = label
    return tally


@pytest.mark.parametrize(
    "answer, first",
    [
        (Prediction("a", 1, 0.9, 3), True),
        (PredictionError("a", "invalid_type", "age must be a number"), True),
        (Prediction("stranger", 1, 0.9, 3), False),  # another client's request
    ],
)
def test_record_says_whether_an_answer_is_the_first_to_one_of_ours(answer, first):
    tally = tally_of(("a", 1))
    assert tally.record(answer) is first


def test_repeats_and_foreign_answers_are_counted_not_kept():
    tally = tally_of(("a", 1), ("b", 0), ("c", 0))
    for answer in (Prediction("a", 1, 0.9, 1), Prediction("a", 1, 0.9, 1), Prediction("x", 0, 0.1, 1)):
        tally.record(answer)
    tally.record(Prediction("b", 1, 0.6, 2))
    tally.record(PredictionError("c", "out_of_range", "age"))
    summary = tally.summary()
    assert (tally.repeats, tally.foreign) == (1, 1)
    assert summary["sent"] == 3 and summary["answered"] == 3 and summary["unanswered"] == 0
    assert summary["errors"] == 1
    assert summary["accuracy"] == 0.5, "a right, b wrong; the error answer has no prediction"
    assert summary["model_versions"] == [1, 2]
    assert summary["latency_ms"]["p50"] is not None


def test_a_summary_of_nothing_answered():
    summary = tally_of(("a", 1)).summary()
    assert summary["unanswered"] == 1 and summary["accuracy"] is None and summary["latency_ms"]["p99"] is None


@pytest.mark.parametrize(
    "answer, text",
    [
        (Prediction("a", 1, 0.91, 3), "high income: send offer (p=0.91, model v3)"),
        (Prediction("a", 0, 0.12, 1), "low income: no offer (p=0.12, model v1)"),
        (
            PredictionError("a", "too_large", "the message has 70000 bytes"),
            "error too_large: the message has 70000 bytes",
        ),
    ],
)
def test_describe(answer, text):
    assert describe(answer) == text


def test_the_reasons_add_up_to_the_log_odds():
    text = describe_reasons(Explanation(4.989, -2.433, (("capital_gain", 6.096), ("age", 0.641)), 0.685))
    lines = text.splitlines()
    assert "capital_gain" in lines[0] and "+6.096" in lines[0]
    assert "(all other fields)" in lines[2] and "log-odds +4.989" in lines[3]
