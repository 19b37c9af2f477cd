"""A spec's data files: checked against their digests, parsed into validated frames, split; and the
Adult spec reproduces what the pipeline trained on before specs existed, row for row."""

import gzip
import hashlib
import shutil
from dataclasses import replace

import numpy as np
import pytest

from utils.data import (
    DATA_DIR,
    TARGET,
    DataIntegrityError,
    download,
    frame_columns,
    frame_from_text,
    labels_of,
    load_dataset,
)
from utils.features import Preprocessor
from utils.spec import DataFile, load_spec

# Digests of the matrices, labels and preprocessor that the code before specs made of adult.data
# and adult.test (utils/data.py, utils/features.py at commit 8aae718): the Adult spec must give the same.
BEFORE_SPECS = {
    "train_matrix": "694a2f73f6b35c8705b2d7b572e5be71414e257f6149c53d60811ecad7f4923a",
    "holdout_matrix": "d582ecb41d33f001720a8c6807508ffdecfe0fe8790e6e1d3ff73e1fa1904d83",
    "holdout_labels": "c9f76b221ffcd9de305a04c2dde24e63973440517aea9e4e4e7dc298f367c989",
    "stream_labels": "249decdf54733fda18074c6b8114364e6827188cc45f51c52d03501ce7f064ea",
    "preprocessor": "85f3b170323fa3891a3e885db9bfe8e3db34d249a0f72e70a146a489500c9915",
}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_adult_spec_reproduces_the_features_and_holdout_from_before_specs(adult):
    spec = adult.spec
    assert (len(adult.training), len(adult.holdout), len(adult.stream)) == (32561, 8140, 8141)
    preprocessor = Preprocessor.fit(spec, frame_columns(adult.training, spec))
    train_matrix = preprocessor.transform(frame_columns(adult.training, spec))
    holdout_matrix = preprocessor.transform(frame_columns(adult.holdout, spec))
    assert digest(train_matrix.tobytes()) == BEFORE_SPECS["train_matrix"]
    assert digest(holdout_matrix.tobytes()) == BEFORE_SPECS["holdout_matrix"]
    assert digest(labels_of(adult.holdout).astype(np.int64).tobytes()) == BEFORE_SPECS["holdout_labels"]
    assert digest(labels_of(adult.stream).astype(np.int64).tobytes()) == BEFORE_SPECS["stream_labels"]
    assert digest(preprocessor.to_json().encode()) == BEFORE_SPECS["preprocessor"]
    assert list(adult.evaluations) == ["adult_test"] and len(adult.evaluations["adult_test"]) == 16281


def test_missing_markers_become_missing_values(adult):
    assert adult.training["workclass"].isna().sum() == 1836
    assert not (adult.training["workclass"] == "?").any()
    assert set(adult.training[TARGET].unique()) == {0, 1}


@pytest.fixture
def data_copy(tmp_path):
    shutil.copytree(DATA_DIR / "adult", tmp_path / "adult")
    return load_spec(tmp_path / "adult" / "spec.toml")


def test_corrupted_copy_is_refused(data_copy):
    path = data_copy.folder / "adult.data.gz"
    content = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(content.replace(b"State-gov", b"State-Gov", 1)))
    with pytest.raises(DataIntegrityError, match="SHA-256"):
        load_dataset(data_copy)


def test_truncated_copy_is_refused(data_copy):
    path = data_copy.folder / "adult.test.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataIntegrityError, match="cannot read"):
        load_dataset(data_copy)


def test_a_missing_file_is_refused_in_one_line(data_copy):
    (data_copy.folder / "adult.data.gz").unlink()
    with pytest.raises(DataIntegrityError) as refused:
        load_dataset(data_copy)
    assert "\n" not in str(refused.value) and "adult.data.gz" in str(refused.value)


def test_download_failure_points_to_the_bundled_copy():
    # Nothing listens on port 9 of the loopback: the download fails at once, offline or not.
    with pytest.raises(DataIntegrityError, match="bundled copy"):
        download(DataFile("adult.data", url="http://127.0.0.1:9/adult.data"), timeout_s=2)


@pytest.mark.parametrize(
    "text, refused",
    [
        ("age,workclass\n1,x\n", "lacks the column"),
        ("age,workclass,fnlwgt,education,education_num,marital_status,occupation,relationship,race,gender,"
         "capital_gain,capital_loss,hours_per_week,native_country,income_bracket,extra\n", "does not know"),
    ],
)  # fmt: skip
def test_a_file_that_does_not_fit_the_spec_is_refused(adult, text, refused):
    spec = replace(adult.spec, header=True, columns=())
    with pytest.raises(DataIntegrityError, match=refused):
        frame_from_text(spec, text)


def test_a_number_that_is_not_one_names_its_row(adult):
    spec = replace(adult.spec, header=True, columns=())
    header = ",".join([*spec.field_names, spec.label.column])
    row = "39,State-gov,77516,Bachelors,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,US,<=50K"
    with pytest.raises(DataIntegrityError, match=r"'age' should be a number, row 2 holds 'old'"):
        frame_from_text(spec, f"{header}\n{row}\n{row.replace('39', 'old', 1)}\n")
