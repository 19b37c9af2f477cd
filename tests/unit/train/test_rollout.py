"""Ending a trial in the model store: the decision recorded first, then carried out, idempotently."""

import pytest

from train.promotion import DECISION_KEY
from train.rollout import conclude
from utils.messages.events import ChallengerStarted
from utils.model_store import ModelStore


@pytest.fixture
def store(tmp_path, small_model_files):
    store = ModelStore(tmp_path / "models")
    for _ in range(2):
        store.publish(small_model_files, {"trigger": "test"})
    store.set_current(1)
    return store


ROLLOUT = ChallengerStarted(2, 1, "shadow", 0.0, 100)


@pytest.mark.parametrize("promoted, serving", [(True, 2), (False, 1)])
def test_a_decision_is_recorded_carried_out_and_the_rollout_cleared(store, promoted, serving):
    store.set_challenger(ROLLOUT)
    decided = conclude(store, ROLLOUT, promoted, "live judgement", "because", None)
    assert (decided.version, decided.promoted, decided.decided_by) == (2, promoted, "live judgement")
    assert store.current_version() == serving
    assert store.challenger() is None
    decision = store.metadata(2)[DECISION_KEY]
    assert (decision["promoted"], decision["reason"], decision["champion_version"]) == (promoted, "because", 1)
    assert store.read_verified(2)  # the files still match their checksums


def test_concluding_again_finishes_the_first_decision_and_changes_nothing_else(store):
    store.set_challenger(ROLLOUT)
    store.update_metadata(2, {DECISION_KEY: {"promoted": True, "decided_by": "operator", "reason": "early"}})
    # A restart after the decision was written, before it was carried out: the first decision wins.
    decided = conclude(store, ROLLOUT, False, "live judgement", "late", None)
    assert (decided.promoted, decided.decided_by) == (True, "operator")
    assert store.current_version() == 2 and store.challenger() is None
    conclude(store, ROLLOUT, False, "live judgement", "later", None)
    assert store.promotion_history() == [1, 2]


def test_a_rollout_survives_in_the_store(store):
    assert store.challenger() is None
    store.set_challenger(ROLLOUT)
    record = ModelStore(store.root).challenger()
    assert record == ROLLOUT
