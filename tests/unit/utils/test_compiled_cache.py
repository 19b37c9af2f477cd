"""The compiled form: same scores as LightGBM on all of adult.test, cached by checksum, refused when
its object does not match its manifest."""

import hashlib
import json
import os
import subprocess
import sys
import threading

import lightgbm as lgb
import numpy as np
import pytest

from utils.compiled_cache import (
    MANIFEST_FILE,
    OBJECT_FILE,
    TOLERANCE,
    CompiledCache,
    CorruptEntry,
    at_niceness,
    cache_key,
    compiler_id,
    largest_difference,
    rejection,
)
from utils.data import frame_columns
from utils.features import Preprocessor
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE

NAN = float("nan")


@pytest.mark.parametrize(
    "reference, candidate, expected",
    [
        ([0.1, 0.2], [0.1, 0.2], 0.0),
        ([0.1, 0.2], [0.1, 0.2 + 1e-12], 1e-12),
        ([0.1, 0.2], [0.1], float("inf")),  # shapes differ
        ([0.1, NAN], [0.1, 0.3], float("inf")),  # NaN against a number
        ([NAN, 0.5], [NAN, 0.5], 0.0),
        ([], [], 0.0),
    ],
)
def test_largest_difference(reference, candidate, expected):
    assert largest_difference(np.array(reference), np.array(candidate)) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    "offset, refused",
    [(0.0, False), (TOLERANCE / 2, False), (TOLERANCE * 2, True), (0.01, True)],
)
def test_rejection_names_the_difference_beyond_the_tolerance(offset, refused):
    reference = np.linspace(0, 1, 100)
    reason = rejection(reference, reference + offset)
    assert (reason is not None) is refused
    if reason is not None:
        assert "100 holdout rows" in reason


def test_the_key_follows_the_model_and_the_compiler():
    assert cache_key(b"model a", "c1") == cache_key(b"model a", "c1")
    assert len({cache_key(b"model a", "c1"), cache_key(b"model b", "c1"), cache_key(b"model a", "c2")}) == 3


@pytest.fixture(scope="module")
def built(tmp_path_factory, small_model_files):
    cache = CompiledCache(tmp_path_factory.mktemp("compiled"))
    model_text = small_model_files[MODEL_FILE]
    assert cache.load(model_text) is None, "nothing is built yet"
    cache.build(model_text, timeout_s=300)
    return cache, model_text


def test_the_compiled_form_scores_all_of_adult_test_like_lightgbm(built, small_model_files, adult):
    cache, model_text = built
    preprocessor = Preprocessor.from_json(small_model_files[PREPROCESSOR_FILE].decode(), adult.spec)
    matrix = preprocessor.transform(frame_columns(adult.evaluations["adult_test"], adult.spec))
    reference = np.asarray(lgb.Booster(model_str=model_text.decode()).predict(matrix))
    compiled = cache.load(model_text)
    assert compiled is not None
    assert len(matrix) > 16_000
    assert largest_difference(reference, compiled.predict(matrix)) <= TOLERANCE


def test_an_entry_is_named_by_checksum_and_records_its_object_digest(built):
    cache, model_text = built
    entry = cache.path_of(cache_key(model_text, compiler_id()))
    manifest = json.loads((entry / MANIFEST_FILE).read_text())
    assert manifest["model_sha256"] == hashlib.sha256(model_text).hexdigest()
    assert manifest["object_sha256"] == hashlib.sha256((entry / OBJECT_FILE).read_bytes()).hexdigest()
    assert not (entry / "model.txt").exists(), "the cache holds objects, not model copies"


def test_a_second_build_of_the_same_model_reuses_the_entry(built):
    cache, model_text = built
    entry = cache.path_of(cache_key(model_text, compiler_id()))
    before = (entry / OBJECT_FILE).stat().st_mtime_ns
    cache.build(model_text, timeout_s=300)
    assert (entry / OBJECT_FILE).stat().st_mtime_ns == before


def test_an_object_that_does_not_match_its_digest_is_not_loaded(built, tmp_path):
    cache, model_text = built
    entry = cache.path_of(cache_key(model_text, compiler_id()))
    tampered = CompiledCache(tmp_path)
    copy = tampered.path_of(entry.name)
    copy.mkdir()
    (copy / MANIFEST_FILE).write_bytes((entry / MANIFEST_FILE).read_bytes())
    code = bytearray((entry / OBJECT_FILE).read_bytes())
    code[len(code) // 2] ^= 0xFF
    (copy / OBJECT_FILE).write_bytes(bytes(code))
    with pytest.raises(CorruptEntry):
        tampered.load(model_text)


@pytest.mark.parametrize("thread_niceness, wanted", [(3, 5), (5, 5), (0, 19)])
def test_a_build_child_runs_at_the_niceness_asked_not_added_to_its_threads(thread_niceness, wanted):
    """The build is started from a background thread already lowered: the child's niceness is the
    one asked for, not the thread's plus it."""
    seen: list[int] = []

    def start_child() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), thread_niceness)
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
            capture_output=True,
            text=True,
            preexec_fn=at_niceness(wanted),
            check=True,
        )
        seen.append(int(child.stdout))

    thread = threading.Thread(target=start_child)
    thread.start()
    thread.join()
    assert seen == [wanted]
