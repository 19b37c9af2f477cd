import numpy as np
import pytest

from utils.data import frame_to_records
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE, REFERENCE_FILE, ModelStoreError
from utils.scoring import scorer_from_files
from utils.spec import SPEC_FILE


def test_batch_scores_equal_one_by_one_scores_to_the_bit(small_model_files, adult):
    scorer = scorer_from_files(1, small_model_files)
    records = frame_to_records(adult.holdout.head(300), adult.spec)
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
        (SPEC_FILE, b"not = [toml"),
        (SPEC_FILE, b'name = "x"'),
        (REFERENCE_FILE, b'{"records": [{}], "scores": []}'),
    ],
)
def test_unusable_files_are_refused_even_with_matching_checksums(small_model_files, name, content):
    with pytest.raises(ModelStoreError):
        scorer_from_files(1, {**small_model_files, name: content})


def test_a_version_from_before_specs_serves_with_the_adult_form(small_model_files, adult):
    old = {name: content for name, content in small_model_files.items() if name in (MODEL_FILE, PREPROCESSOR_FILE)}
    scorer = scorer_from_files(1, old)
    assert scorer.spec.form_digest() == adult.spec.form_digest() and scorer.reference is None


def test_a_version_carries_its_form_and_reference(small_model_files, adult):
    scorer = scorer_from_files(1, small_model_files)
    assert scorer.spec.name == "adult" and scorer.feature_names[-1] == "native_country_x_occupation"
    assert scorer.reference is not None and len(scorer.reference.records) == 500
    assert np.allclose(scorer.predict_proba(scorer.reference.records), scorer.reference.scores, rtol=0, atol=1e-12)
