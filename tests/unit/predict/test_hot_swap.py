"""Versions loaded in the background and swapped in between batches; a bad version never serves."""

import time

import pytest

from predict.hot_swap import LoadResult, ModelSwapper
from utils.messages.events import ChallengerStarted
from utils.messages.requests import CHALLENGER, CHAMPION
from utils.model_store import MODEL_FILE, ModelStore, VersionMetadata
from utils.scoring import load_scorer


@pytest.fixture
def store(tmp_path, small_model_files):
    store = ModelStore(tmp_path / "models")
    for _ in range(3):
        store.publish(small_model_files, VersionMetadata(trigger="test"))
    store.set_current(1)
    return store


@pytest.fixture
def swapper(store):
    swapper = ModelSwapper(store, load_scorer(store, 1))
    yield swapper
    swapper.close()


def results_of(swapper: ModelSwapper, count: int = 1, timeout_s: float = 30) -> list[LoadResult]:
    results: list[LoadResult] = []
    deadline = time.monotonic() + timeout_s
    while len(results) < count and time.monotonic() < deadline:
        results += swapper.poll_loaded()
        time.sleep(0.02)
    assert len(results) >= count, f"{len(results)} of {count} results from the loader"
    return results


def test_a_requested_version_is_loaded_in_the_background_and_swapped_in(swapper):
    swapper.request(2)
    assert swapper.current.version == 1, "request() returns at once; the swap happens in poll_loaded"
    [result] = results_of(swapper)
    assert (result.version, result.error, result.role) == (2, None, CHAMPION)
    assert swapper.current.version == 2


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_version_that_fails_verification_is_refused_and_the_current_one_serves(store, swapper, damage):
    if damage == "corrupt":
        (store.path_of(3) / MODEL_FILE).write_text("tree\nnot a model")
        version = 3
    else:
        version = 99
    swapper.request(version)
    [result] = results_of(swapper)
    assert result.version == version and result.error is not None and result.scorer is None
    assert swapper.current.version == 1


def test_requesting_the_serving_version_does_nothing(swapper):
    swapper.request(1)
    swapper.request(2)
    [result] = results_of(swapper)
    assert result.version == 2


def test_a_fetch_brings_a_version_in_before_it_is_loaded(store):
    fetched: list[int] = []
    swapper = ModelSwapper(store, load_scorer(store, 1), fetch=fetched.append)
    try:
        swapper.request(2)
        results_of(swapper)
        assert fetched == [2] and swapper.current.version == 2
    finally:
        swapper.close()


@pytest.mark.parametrize("promoted, serving", [(True, 2), (False, 1)])
def test_a_challenger_scores_beside_the_champion_until_its_rollout_ends(swapper, promoted, serving):
    swapper.start_rollout(ChallengerStarted(2, 1, "canary", 0.3, 0))
    assert swapper.serving_challenger() is None, "not loaded yet"
    [result] = results_of(swapper)
    assert result.role == CHALLENGER and swapper.current.version == 1
    challenger = swapper.serving_challenger()
    assert challenger is not None and (challenger.scorer.version, challenger.canary_fraction) == (2, 0.3)
    assert swapper.end_rollout(2, promoted) is promoted, "a loaded challenger swaps in at once"
    assert swapper.current.version == serving and swapper.serving_challenger() is None


def test_a_promoted_challenger_not_loaded_yet_is_loaded_then_served(swapper):
    assert swapper.end_rollout(3, promoted=True) is False
    results_of(swapper)
    assert swapper.current.version == 3


def test_the_serving_version_cannot_be_its_own_challenger(swapper):
    swapper.start_rollout(ChallengerStarted(1, 1, "shadow", 0.0, 0))
    assert swapper.rollout is None and swapper.serving_challenger() is None
