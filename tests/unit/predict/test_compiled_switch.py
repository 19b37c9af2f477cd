"""A version serves on LightGBM at once and moves to its compiled form only once that is built and
reproduces LightGBM on the version's reference rows; otherwise LightGBM keeps serving."""

import time

import pytest

from predict.compiled_switch import CompiledFormRefused, CompiledSwitch, check_rows
from predict.hot_swap import LoadResult, ModelSwapper
from utils.compiled_cache import CompiledCache, CompiledModel
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE, ModelStore
from utils.scoring import Scorer, scorer_from_files


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return CompiledCache(tmp_path_factory.mktemp("compiled"))


@pytest.fixture(scope="module")
def other_model_files(small_model_files):
    """A different model (fewer trees) whose compiled form must not pass for the first one's."""
    text = small_model_files[MODEL_FILE].decode()
    import lightgbm as lgb

    booster = lgb.Booster(model_str=text)
    return {**small_model_files, MODEL_FILE: booster.model_to_string(num_iteration=5).encode()}


def wait_for(swapper: ModelSwapper, timeout_s: float = 120) -> list[LoadResult]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if results := swapper.poll_loaded():
            return results
        time.sleep(0.05)
    raise AssertionError("no result from the background threads")


def test_the_compiled_form_is_built_checked_and_swapped_in(tmp_path, small_model_files, cache):
    scorer = scorer_from_files(1, small_model_files)
    swapper = ModelSwapper(ModelStore(tmp_path), scorer, upgrade=CompiledSwitch(cache).of)
    try:
        assert swapper.current.engine == "lightgbm", "a version serves on LightGBM at once"
        [result] = wait_for(swapper)
        assert result.compile_refused is None
        assert (swapper.current.version, swapper.current.engine) == (1, "compiled")
    finally:
        swapper.close()


def test_a_compiled_form_that_scores_differently_is_refused(small_model_files, other_model_files, cache):
    cache.build(other_model_files[MODEL_FILE], timeout_s=300)
    wrong = cache.load(other_model_files[MODEL_FILE])
    assert wrong is not None

    class WrongObjectCache(CompiledCache):
        def load(self, model_text: bytes) -> CompiledModel | None:
            return wrong

    form = CompiledSwitch(WrongObjectCache(cache.root))
    with pytest.raises(CompiledFormRefused) as refused:
        form.of(scorer_from_files(1, small_model_files))
    assert refused.value.reason == "mismatch"


def test_without_a_compiler_lightgbm_keeps_serving(tmp_path, small_model_files, monkeypatch):
    import utils.compiled_cache

    def missing() -> str:
        raise utils.compiled_cache.CompilerUnavailable("lleaves not importable")

    monkeypatch.setattr(utils.compiled_cache, "compiler_id", missing)
    scorer = scorer_from_files(1, small_model_files)
    swapper = ModelSwapper(ModelStore(tmp_path), scorer, upgrade=CompiledSwitch(CompiledCache(tmp_path)).of)
    try:
        [result] = wait_for(swapper)
        assert result.compile_refused == "unavailable"
        assert swapper.current is scorer
    finally:
        swapper.close()


def test_a_compiled_form_of_a_version_no_longer_serving_is_dropped(tmp_path, small_model_files):
    first, second = scorer_from_files(1, small_model_files), scorer_from_files(2, small_model_files)
    swapper = ModelSwapper(ModelStore(tmp_path), second)
    try:
        compiled_first = first.with_compiled(CompiledModel("k", object()))
        swapper._loaded.put(LoadResult(1, scorer=compiled_first))
        assert swapper.poll_loaded() == []
        assert swapper.current is second
    finally:
        swapper.close()


def test_scorer_engine_names_what_scores(small_model_files):
    scorer: Scorer = scorer_from_files(1, small_model_files)
    assert scorer.engine == "lightgbm"
    assert scorer.with_compiled(CompiledModel("k", object())).engine == "compiled"


def test_a_version_without_a_reference_is_checked_on_rows_drawn_over_its_ranges(small_model_files, cache):
    old = {name: content for name, content in small_model_files.items() if name in (MODEL_FILE, PREPROCESSOR_FILE)}
    scorer = scorer_from_files(1, old)
    records, expected = check_rows(scorer)
    assert len(records) == 2000 and any(value is None for record in records for value in record.values())
    assert CompiledSwitch(cache).of(scorer).engine == "compiled"
