"""A spec's data: its files read (the bundled copy, or the spec's URL with `--download`), checked
against their SHA-256 before every use, parsed into frames of validated values (the spec's field
names as columns, None or NaN where a value is missing, the label as 0/1 in `TARGET`), and split
into training rows, the fixed holdout and the rows the sample app streams.

Adult is the default (`data/adult/spec.toml`); any spec works the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import math
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utils.spec import SPEC_FILE, DataFile, DatasetSpec, SpecError, load_spec

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_SPEC = DATA_DIR / "adult" / SPEC_FILE
TARGET = "__label__"  # the 0/1 label column of every frame (no field can be named so: see check_columns)


class DataIntegrityError(SpecError):
    """A data file is missing, unreadable, does not parse, or does not match its digest."""


@dataclass(frozen=True)
class Dataset:
    spec: DatasetSpec
    training: pd.DataFrame  # the rows every version trains on (before observations)
    holdout: pd.DataFrame  # the fixed rows every version is compared on, never trained on
    stream: pd.DataFrame  # the rows the sample app sends by default
    evaluations: dict[str, pd.DataFrame] = field(default_factory=dict)  # scored once by initialize


def default_spec() -> DatasetSpec:
    return load_spec(DEFAULT_SPEC)


def load_dataset(spec: DatasetSpec, use_download: bool = False) -> Dataset:
    training = pd.concat([read_frame(spec, item, use_download) for item in spec.files], ignore_index=True)
    holdout_rule = spec.holdout
    if holdout_rule.file is not None:
        whole = read_frame(spec, holdout_rule.file, use_download)
        first = holdout_rule.first_row
        stream = whole.iloc[:first].reset_index(drop=True)
        holdout = whole.iloc[first:].reset_index(drop=True)
        name = Path(holdout_rule.file.path).name.removesuffix(".gz").replace(".", "_").replace("-", "_")
        return Dataset(spec, training, holdout, stream, {name: whole})
    order = np.random.RandomState(holdout_rule.seed).permutation(len(training))
    size = max(1, round(len(training) * holdout_rule.fraction))
    holdout_rows, training_rows = np.sort(order[:size]), np.sort(order[size:])
    holdout = training.iloc[holdout_rows].reset_index(drop=True)
    training = training.iloc[training_rows].reset_index(drop=True)
    return Dataset(spec, training, holdout, training)


def read_frame(spec: DatasetSpec, data_file: DataFile, use_download: bool = False) -> pd.DataFrame:
    """One of the spec's files as a frame of validated values."""
    content = download(data_file) if use_download else read_file(spec.path_of(data_file))
    verify_digest(data_file, content)
    return frame_from_text(spec, decode(content, data_file.path), data_file.skip_rows, data_file.path)


def read_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataIntegrityError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from error


def download(data_file: DataFile, timeout_s: float = 30.0) -> bytes:
    if not data_file.url:
        raise DataIntegrityError(f"{data_file.path} has no url in the spec to download it from")
    log.info("downloading url=%s", data_file.url)
    try:
        with urllib.request.urlopen(data_file.url, timeout=timeout_s) as response:
            content = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise DataIntegrityError(
            f"cannot download {data_file.url} ({error}); run without --download to use the bundled copy"
        ) from error
    try:
        verify_digest(data_file, content)
    except DataIntegrityError as error:
        raise DataIntegrityError(f"{error}; run without --download to use the bundled copy") from error
    return content


def verify_digest(data_file: DataFile, content: bytes) -> None:
    if not data_file.sha256:
        return
    actual = hashlib.sha256(content).hexdigest()
    if actual != data_file.sha256:
        raise DataIntegrityError(
            f"{data_file.path}: SHA-256 is {actual}, expected {data_file.sha256}; the file is corrupt or "
            "changed since the spec was written"
        )


def decode(content: bytes, name: str) -> str:
    try:
        return content.decode("utf-8-sig")  # a byte-order mark is not part of the first column's name
    except UnicodeDecodeError as error:
        raise DataIntegrityError(f"{name} is not UTF-8 text ({error.reason} at byte {error.start})") from error


def parse_csv(
    text: str,
    header: bool = True,
    columns: Sequence[str] = (),
    skip_initial_space: bool = False,
    skip_rows: int = 0,
    name: str = "data",
) -> pd.DataFrame:
    """CSV text -> a frame of the raw texts (nothing converted, nothing taken for missing)."""
    try:
        return pd.read_csv(
            io.StringIO(text),
            header=0 if header else None,
            names=list(columns) if not header else None,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=skip_initial_space,
            skip_blank_lines=True,
            skiprows=skip_rows,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise DataIntegrityError(f"{name} does not parse as CSV: {_first_line(error)}") from error


def frame_from_text(spec: DatasetSpec, text: str, skip_rows: int = 0, name: str = "data") -> pd.DataFrame:
    raw = parse_csv(text, spec.header, spec.columns, spec.skip_initial_space, skip_rows, name)
    return frame_of(spec, raw, name)


def frame_of(spec: DatasetSpec, raw: pd.DataFrame, name: str = "data", labelled: bool = True) -> pd.DataFrame:
    """Raw texts -> validated values: numbers as floats (NaN: missing), categories stripped (None:
    missing), the label as 0/1. Rows without a usable label are dropped (and counted in the log)."""
    check_columns(spec, raw.columns, name, labelled)
    frame: dict[str, Any] = {}
    for item in spec.fields:
        texts = raw[item.name].str.strip()
        missing = texts.isin(item.missing)
        if item.kind == "numeric":
            numbers = pd.to_numeric(texts.where(~missing), errors="coerce")
            bad = ~np.isfinite(numbers.to_numpy(dtype=np.float64, na_value=np.nan)) & ~missing.to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataIntegrityError(
                    f"{name}: {item.name!r} should be a number, row {row + 1} holds {texts.iloc[row]!r} "
                    f"(add it to the field's missing markers in the spec if it means no value)"
                )
            frame[item.name] = numbers.astype(np.float64)
        else:
            frame[item.name] = texts.where(~missing, None).astype(object)
    result = pd.DataFrame(frame, index=raw.index)
    if not labelled:
        return result.reset_index(drop=True)
    labels = raw[spec.label.column].str.strip()
    mapping = {text: 1 for text in spec.label.positive} | {text: 0 for text in spec.label.negative}
    target = labels.map(mapping)
    unusable = target.isna()
    if unusable.any():
        seen = sorted(set(labels[unusable]))[:5]
        log.warning("rows without a usable label dropped file=%s rows=%s values=%s", name, int(unusable.sum()), seen)
    result[TARGET] = target
    return result[~unusable].astype({TARGET: np.int64}).reset_index(drop=True)


def check_columns(spec: DatasetSpec, columns: Iterable[Any], name: str, labelled: bool = True) -> None:
    """The file's columns are the spec's fields, its label (if `labelled`) and its ignored columns."""
    present = [str(column) for column in columns]
    if TARGET in present:
        raise DataIntegrityError(f"{name}: a column may not be named {TARGET!r}")
    needed = [*spec.field_names, *([spec.label.column] if labelled else [])]
    absent = [column for column in needed if column not in present]
    if absent:
        raise DataIntegrityError(f"{name} lacks the column(s) {absent} of the spec {spec.name!r} (it has {present})")
    known = {*spec.field_names, spec.label.column, *spec.ignore}
    unknown = [column for column in present if column not in known]
    if unknown:
        raise DataIntegrityError(
            f"{name} has column(s) {unknown} the spec {spec.name!r} does not know: add them to its ignore list"
        )


def frame_to_records(frame: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, Any]]:
    """Frame rows -> plain dicts of the form's fields (numbers as Python floats, missing as None)."""
    columns = {name: [_plain(value) for value in frame[name].tolist()] for name in spec.field_names}
    return [{name: columns[name][i] for name in spec.field_names} for i in range(len(frame))]


def frame_columns(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, list]:
    """The field columns as Python lists (missing as None), the input the preprocessor takes."""
    return {name: [_plain(value) for value in frame[name].tolist()] for name in spec.field_names}


def labels_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[TARGET].to_numpy()


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
