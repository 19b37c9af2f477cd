import numpy as np
import pytest

from utils.data import frame_to_records, load_test
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE, ModelStoreError
from utils.scoring import scorer_from_files


def test_batch_scores_equal_one_by_one_scores_to_the_bit(small_model_files):
    scorer = scorer_from_files(1, small_model_files)
    records = frame_to_records(load_test().head(300))
    _, batch = scorer.score(records)
    single = np.array([scorer.score([record])[1][0] for record in records])
    assert np.array_equal(batch, single)


@pytest.mark.parametrize(
    "name, content",
    [
        (MODEL_FILE, b"tree\nversion=v4\n"),
        (MODEL_FILE, b"\xff\xfe"),
        (PREPROCESSOR_FILE, b"{}"),
        (PREPROCESSOR_FILE, b"[]"),
    ],
)
def test_unusable_files_are_refused_even_with_matching_checksums(small_model_files, name, content):
    with pytest.raises(ModelStoreError):
        scorer_from_files(1, {**small_model_files, name: content})
