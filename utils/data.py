"""The UCI Adult census data: the project's bundled copy (or UCI's, with --download), checked
against its SHA-256 before every use, parsed into a DataFrame with the message field names."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from utils.schema import FEATURE_FIELDS, LABEL_FIELD, LABELS

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "adult"
UCI_BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
FILES = ("adult.data", "adult.test")
COLUMNS = (*FEATURE_FIELDS, LABEL_FIELD)
# adult.test is split in two halves: the sample app streams the first, the second is a holdout
# that no model ever trains on, so that every model version is compared on the same rows.
HOLDOUT_START = 8141


class DataIntegrityError(RuntimeError):
    """A data file is missing, unreadable or does not match its published digest."""


def expected_digests(data_dir: Path = DATA_DIR) -> dict[str, str]:
    digests = {}
    for line in (data_dir / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            digests[name.lstrip("*")] = digest
    return digests


def verify_digest(name: str, content: bytes, data_dir: Path = DATA_DIR) -> bytes:
    expected = expected_digests(data_dir)[name]
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise DataIntegrityError(f"{name}: SHA-256 is {actual}, expected {expected}; the file is corrupt or not UCI's")
    return content


def read_bundled(name: str, data_dir: Path = DATA_DIR) -> bytes:
    path = data_dir / f"{name}.gz"
    try:
        content = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataIntegrityError(f"cannot read the bundled copy {path}: {error}") from error
    return verify_digest(name, content, data_dir)


def download(name: str, base_url: str = UCI_BASE_URL, timeout_s: float = 30.0, data_dir: Path = DATA_DIR) -> bytes:
    url = base_url + name
    log.info("downloading url=%s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            content = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise DataIntegrityError(
            f"cannot download {url} ({error}); run without --download to use the bundled copy in {data_dir}"
        ) from error
    try:
        return verify_digest(name, content, data_dir)
    except DataIntegrityError as error:
        raise DataIntegrityError(f"{error}; run without --download to use the bundled copy in {data_dir}") from error


def parse_adult(content: bytes) -> pd.DataFrame:
    """Raw UCI text -> one row per person, '?' kept as a category, label as 0/1 in `label`."""
    text = content.decode("ascii")
    if text.startswith("|"):  # adult.test opens with a comment line
        text = text.split("\n", 1)[1]
    frame = pd.read_csv(
        io.StringIO(text),
        header=None,
        names=list(COLUMNS),
        skipinitialspace=True,
        keep_default_na=False,
        skip_blank_lines=True,
    )
    frame["label"] = frame[LABEL_FIELD].map(LABELS).astype(np.int64)
    return frame.drop(columns=[LABEL_FIELD])


def load_split(name: str, use_download: bool = False) -> pd.DataFrame:
    content = download(name) if use_download else read_bundled(name)
    return parse_adult(content)


def load_train(use_download: bool = False) -> pd.DataFrame:
    return load_split("adult.data", use_download)


def load_test(use_download: bool = False) -> pd.DataFrame:
    return load_split("adult.test", use_download)


def split_test(test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows the sample app streams, fixed holdout)."""
    return test.iloc[:HOLDOUT_START].reset_index(drop=True), test.iloc[HOLDOUT_START:].reset_index(drop=True)


def frame_to_records(frame: pd.DataFrame) -> list[dict]:
    """DataFrame rows -> plain dicts of the message fields (numbers as Python numbers)."""
    columns = {name: frame[name].tolist() for name in FEATURE_FIELDS}
    return [{name: columns[name][i] for name in FEATURE_FIELDS} for i in range(len(frame))]


def frame_columns(frame: pd.DataFrame) -> dict[str, list]:
    """The feature columns as Python lists, the input the preprocessor takes."""
    return {name: frame[name].tolist() for name in FEATURE_FIELDS}
