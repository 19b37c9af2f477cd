import json
import os

import pytest

from utils.model_store import MODEL_FILE, TEMP_PREFIX, ModelStore, ModelStoreError, VersionMetadata
from utils.scoring import load_scorer


@pytest.fixture
def store(tmp_path):
    return ModelStore(tmp_path / "models")


def publish(store, files, **metadata):
    return store.publish(files, VersionMetadata(trigger="test", **metadata))


def test_versions_are_numbered_and_pointer_moves(store, small_model_files):
    assert store.current_version() is None
    assert [publish(store, small_model_files) for _ in range(3)] == [1, 2, 3]
    assert store.current_version() is None  # publishing does not promote
    store.set_current(2)
    assert store.current_version() == 2
    assert store.promotion_history() == [2]
    assert (store.root / "CURRENT").read_text() == "2\n"


def test_metadata_records_checksums_and_fields(store, small_model_files):
    version = publish(store, small_model_files, trained_rows=3000)
    metadata = store.metadata(version)
    assert metadata.version == version
    assert metadata.trained_rows == 3000
    assert set(metadata.checksums) == {"model.txt", "preprocessor.json", "spec.toml", "reference.json"}
    assert metadata.created_at


def test_pointer_to_missing_version_is_refused(store, small_model_files):
    publish(store, small_model_files)
    with pytest.raises(ModelStoreError):
        store.set_current(7)


def test_half_written_version_is_invisible_and_cleaned(store, small_model_files):
    publish(store, small_model_files)
    leftover = store.root / f"{TEMP_PREFIX}killed"
    leftover.mkdir()
    (leftover / MODEL_FILE).write_text("half a model")
    assert store.versions() == [1]
    assert publish(store, small_model_files) == 2
    assert not leftover.exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_corrupt_version_is_refused(store, small_model_files, damage):
    version = publish(store, small_model_files)
    path = store.path_of(version) / MODEL_FILE
    content = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "flip":
        path.write_bytes(content.replace(b"Tree=1", b"Tree=9", 1))
    else:
        os.remove(path)
    with pytest.raises(ModelStoreError):
        load_scorer(store, version)


def test_unknown_version_is_an_error(store):
    with pytest.raises(ModelStoreError, match="does not exist"):
        store.metadata(42)


def test_prune_keeps_current_and_newest(store, small_model_files):
    for _ in range(6):
        publish(store, small_model_files)
    store.set_current(2)
    removed = store.prune(keep=3)
    assert removed == [1, 3, 4]
    assert store.versions() == [2, 5, 6]
    assert store.current_version() == 2


def test_loaded_version_scores(store, small_model_files):
    version = publish(store, small_model_files)
    scorer = load_scorer(store, version)
    assert scorer.version == version
    metadata = json.loads((store.path_of(version) / "metadata.json").read_text())
    assert metadata["version"] == version


def test_metadata_keeps_keys_it_does_not_know_and_reads_old_files(store, small_model_files):
    version = publish(store, small_model_files)
    path = store.path_of(version) / "metadata.json"
    record = json.loads(path.read_text())
    del record["rollout"], record["timings"]  # as written before these existed
    path.write_text(json.dumps({**record, "added_by_a_newer_trainer": {"x": 1}}))
    metadata = store.metadata(version)
    assert metadata.rollout.mode == "direct" and metadata.timings == {}
    store.update_metadata(version, timings={"tuning": 1.5})
    assert json.loads(path.read_text())["added_by_a_newer_trainer"] == {"x": 1}
    assert store.metadata(version).timings == {"tuning": 1.5}


def test_unreadable_metadata_is_a_store_error(store, small_model_files):
    version = publish(store, small_model_files)
    (store.path_of(version) / "metadata.json").write_text('{"rollout": "not an object", "version": "one"}')
    with pytest.raises(ModelStoreError):
        store.metadata(version).rollout.mode  # noqa: B018
