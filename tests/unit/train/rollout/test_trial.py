"""Ending a trial in the model store: the decision recorded first, then carried out, idempotently."""

import pytest

from train.rollout.judgement import Interval, Judgement
from train.rollout.trial import Ending, conclude, decision_metrics
from utils.messages.events import LIVE_JUDGEMENT, OPERATOR, ChallengerStarted
from utils.model_store import ModelStore, RolloutDecision, VersionMetadata


@pytest.fixture
def store(tmp_path, small_model_files):
    store = ModelStore(tmp_path / "models")
    for _ in range(2):
        store.publish(small_model_files, VersionMetadata(trigger="test"))
    store.set_current(1)
    return store


ROLLOUT = ChallengerStarted(2, 1, "shadow", 0.0, 100)


@pytest.mark.parametrize("promoted, serving", [(True, 2), (False, 1)])
def test_a_decision_is_recorded_carried_out_and_the_rollout_cleared(store, promoted, serving):
    store.set_challenger(ROLLOUT)
    decided = conclude(store, ROLLOUT, Ending(promoted, LIVE_JUDGEMENT, "because"))
    assert (decided.version, decided.promoted, decided.decided_by) == (2, promoted, LIVE_JUDGEMENT)
    assert store.current_version() == serving
    assert store.challenger() is None
    decision = store.metadata(2).rollout_decision
    assert decision is not None
    assert (decision.promoted, decision.reason, decision.champion_version) == (promoted, "because", 1)
    assert store.read_verified(2)  # the files still match their checksums


def test_concluding_again_finishes_the_first_decision_and_changes_nothing_else(store):
    store.set_challenger(ROLLOUT)
    store.update_metadata(2, rollout_decision=RolloutDecision(True, OPERATOR, "early"))
    # A restart after the decision was written, before it was carried out: the first decision wins.
    decided = conclude(store, ROLLOUT, Ending(False, LIVE_JUDGEMENT, "late"))
    assert (decided.promoted, decided.decided_by) == (True, OPERATOR)
    assert store.current_version() == 2 and store.challenger() is None
    conclude(store, ROLLOUT, None)  # finishing the recorded decision
    assert store.promotion_history() == [1, 2]


def test_finishing_without_a_recorded_decision_is_refused(store):
    store.set_challenger(ROLLOUT)
    with pytest.raises(ValueError):
        conclude(store, ROLLOUT, None)


def test_a_rollout_survives_in_the_store(store):
    assert store.challenger() is None
    store.set_challenger(ROLLOUT)
    assert ModelStore(store.root).challenger() == ROLLOUT


def test_a_live_judgement_records_its_rule_pairs_and_interval(store):
    judgement = Judgement("sequential", 167, Interval(0.057, 0.010, 0.104), 0.01, {"asked": 600, "failed": 0})
    store.set_challenger(ROLLOUT)
    conclude(store, ROLLOUT, Ending(False, LIVE_JUDGEMENT, "worse", None, judgement))
    decision = store.metadata(2).rollout_decision
    assert decision is not None and decision.figures is not None
    recorded = decision.figures["judgement"]
    assert (recorded["rule"], recorded["pairs"]) == ("sequential", 167)
    assert recorded["log_loss_difference"] == {"estimate": 0.057, "low": 0.010, "high": 0.104}
    assert decision_metrics(None, judgement) == {
        "live_pairs_to_decision": 167.0,
        "live_log_loss_difference_low": 0.010,
        "live_log_loss_difference_high": 0.104,
    }
