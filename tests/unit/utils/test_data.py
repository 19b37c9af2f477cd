import gzip
import shutil

import pytest

from utils.data import DATA_DIR, DataIntegrityError, download, load_test, load_train, read_bundled, split_test


def test_bundled_files_match_uci_digests():
    assert len(load_train()) == 32561
    test = load_test()
    assert len(test) == 16281
    assert set(test["label"].unique()) == {0, 1}
    stream, holdout = split_test(test)
    assert len(stream) + len(holdout) == len(test)


def test_missing_values_stay_a_category():
    train = load_train()
    assert (train["workclass"] == "?").sum() == 1836


@pytest.fixture
def data_copy(tmp_path):
    for path in DATA_DIR.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_corrupted_copy_is_refused(data_copy):
    content = gzip.decompress((data_copy / "adult.data.gz").read_bytes())
    (data_copy / "adult.data.gz").write_bytes(gzip.compress(content.replace(b"State-gov", b"State-Gov", 1)))
    with pytest.raises(DataIntegrityError, match="SHA-256"):
        read_bundled("adult.data", data_copy)


def test_truncated_copy_is_refused(data_copy):
    path = data_copy / "adult.test.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataIntegrityError):
        read_bundled("adult.test", data_copy)


def test_download_failure_points_to_the_bundled_copy():
    # Nothing listens on port 9 of the loopback: the download fails at once, offline or not.
    with pytest.raises(DataIntegrityError, match="bundled copy"):
        download("adult.data", base_url="http://127.0.0.1:9/", timeout_s=2)
