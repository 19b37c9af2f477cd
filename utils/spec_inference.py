"""A draft spec inferred from a CSV file, as a new user starts: `initialize.py --data FILE.csv
--label COLUMN [--positive VALUE] [--ignore COL,COL]`.

The rules, each visible in the draft (which `--write-spec` saves for editing):
- a column is numeric when every value that is not a missing marker reads as a finite number and
  none is written with a leading zero; otherwise it is categorical. A numeric-looking categorical
  (a zip code, a day of the week, an id) is kept categorical when its values have leading zeros or
  its name says it is a code (zip, postcode, postal, code, id, number, num, no): its JSON numbers
  are then matched by their text;
- missing markers are the texts among "", "?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL",
  "None", "none" (and "-" in a column of numbers) that the column holds; a column with none is
  required, one with some may be null or absent;
- numeric bounds are the file's range widened by half of it on each side, and not below 0 when
  the file has no negative value;
- the label must have two values: 0/1 and true/false need no `--positive` (1 and true are
  positive), any other pair needs it; more than two values are refused (binary classification only).
A constant column, an empty file, a missing label column or a file that does not parse is refused
in one line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from utils.data import decode, parse_csv, read_file
from utils.spec import FALSE_WORDS, TRUE_WORDS, DataFile, DatasetSpec, Field, Holdout, Label, LabelKind, SpecError

MISSING_MARKERS = ("", "?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none", "-")
CATEGORICAL_MARKERS = tuple(marker for marker in MISSING_MARKERS if marker != "-")  # "-" may be a category
CODE_NAME = re.compile(r"(^|[^a-z])(zip|postcode|postal|code|id|number|num|no)([^a-z]|$)", re.IGNORECASE)
LEADING_ZERO = re.compile(r"^[+-]?0\d")
BOUND_MARGIN = 0.5  # of the file's range, on each side
SHOWN_VALUES = 10


@dataclass(frozen=True)
class Inferred:
    spec: DatasetSpec
    notes: dict[str, str]  # per field: what inference saw, written above it in the draft
    rows: int


def infer_spec(
    path: Path,
    label: str,
    positive: str | None = None,
    ignore: Sequence[str] = (),
    name: str | None = None,
    holdout: Holdout | None = None,
) -> Inferred:
    """The draft spec of a CSV file with a header; SpecError (one line) if it cannot be one."""
    path = Path(path).resolve()
    content = read_file(path)
    if not content.strip():
        raise SpecError(f"{path.name} is empty")
    raw = parse_csv(decode(content, path.name), name=path.name)
    columns = [str(column) for column in raw.columns]
    if len(raw) == 0:
        raise SpecError(f"{path.name} has a header but no rows")
    mangled = [column for column in columns if re.search(r"\.\d+$", column) and column.rsplit(".", 1)[0] in columns]
    if mangled:
        raise SpecError(f"{path.name} names a column twice: {[column.rsplit('.', 1)[0] for column in mangled]}")
    if label not in columns:
        raise SpecError(f"{path.name} has no column {label!r} for the label; its columns are {columns}")
    unknown = [column for column in ignore if column not in columns]
    if unknown:
        raise SpecError(f"--ignore names column(s) {unknown} that {path.name} does not have")
    label_spec, labelled_rows = infer_label(raw[label].str.strip(), label, positive, path.name)
    fields, notes = [], {}
    for column in columns:
        if column == label or column in ignore:
            continue
        field, note = infer_field(column, raw[column].str.strip(), path.name)
        fields.append(field)
        notes[column] = note
    if not fields:
        raise SpecError(f"{path.name} has no column left to predict from")
    digest = hashlib.sha256(content).hexdigest()
    spec = DatasetSpec(
        name=name or dataset_name(path),
        fields=tuple(fields),
        label=label_spec,
        files=(DataFile(str(path), digest),),
        holdout=holdout or Holdout(),
        ignore=tuple(ignore),
        folder=path.parent,
    )
    return Inferred(spec, notes, labelled_rows)


def dataset_name(path: Path) -> str:
    """A name from the file's: `FlightDelays.csv.gz` -> `flight_delays`."""
    stem = path.name.split(".")[0]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem)
    return re.sub(r"\W+", "_", snake).strip("_").lower() or "dataset"


def infer_label(values: pd.Series, column: str, positive: str | None, file: str) -> tuple[Label, int]:
    texts = values[~values.isin(MISSING_MARKERS)]
    distinct = sorted(set(texts))
    if len(distinct) < 2:
        raise SpecError(f"label {column!r} has {len(distinct)} value(s) {distinct} in {file}: it needs two")
    if len(distinct) > 2:
        shown = distinct[:SHOWN_VALUES] + (["..."] if len(distinct) > SHOWN_VALUES else [])
        raise SpecError(
            f"label {column!r} has {len(distinct)} values {shown} in {file}: only binary classification "
            "is supported for now (map it to two values first)"
        )
    kind: LabelKind = "text"
    if positive is None:
        numbers = {_number(text) for text in distinct}
        if numbers == {0.0, 1.0}:
            kind, positive = "binary", next(text for text in distinct if _number(text) == 1.0)
        elif {text.lower() for text in distinct} == {"true", "false"}:
            kind, positive = "boolean", next(text for text in distinct if text.lower() == "true")
        else:
            raise SpecError(f"label {column!r} has the values {distinct}: say which one is positive with --positive")
    elif positive not in distinct:
        raise SpecError(f"--positive {positive!r} is not a value of label {column!r}: it has {distinct}")
    negative = next(text for text in distinct if text != positive)
    positives, negatives = [positive], [negative]
    if kind == "boolean":  # every spelling of true and false an app may send
        positives = [positive, *[word for word in TRUE_WORDS if word != positive]]
        negatives = [negative, *[word for word in FALSE_WORDS if word != negative]]
    return Label(column, tuple(positives), tuple(negatives), kind), len(texts)


def infer_field(column: str, values: pd.Series, file: str) -> tuple[Field, str]:
    numeric_looking = bool(pd.to_numeric(values[~values.isin(MISSING_MARKERS)], errors="coerce").notna().all())
    candidates = MISSING_MARKERS if numeric_looking else CATEGORICAL_MARKERS
    present = values[~values.isin(candidates)]
    markers = tuple(marker for marker in candidates if (values == marker).any())
    if present.empty or (present.nunique() == 1 and not markers):  # one value and never missing: a constant
        only = present.iloc[0] if len(present) else "nothing but missing markers"
        raise SpecError(
            f"column {column!r} holds one value ({only!r}) in every row of {file}: a constant predicts "
            f"nothing, leave it out with --ignore {column!r}"
        )
    numbers = pd.to_numeric(present, errors="coerce")
    numeric = bool(numbers.notna().all()) and bool(numbers.abs().lt(float("inf")).all())
    leading_zeros = numeric and bool(present.str.match(LEADING_ZERO).any())
    code_name = bool(CODE_NAME.search(column)) and numeric and bool((numbers == numbers.round()).all())
    missing_note = (
        f"missing in {int(values.isin(markers).sum())} rows as {list(markers)}" if markers else "never missing"
    )
    if numeric and not leading_zeros and not code_name:
        low, high = float(numbers.min()), float(numbers.max())
        margin = (high - low) * BOUND_MARGIN
        minimum = low - margin if low < 0 else max(0.0, low - margin)
        integers = bool((numbers == numbers.round()).all())
        if integers:
            minimum, maximum = (
                float(int(minimum) if minimum >= 0 else -int(-minimum) - 1),
                float(int(high + margin) + 1),
            )
        else:
            maximum = high + margin
        note = f"numeric: {low:g} to {high:g} in the file; {missing_note}"
        field = Field(column, "numeric", minimum, maximum, not markers, bool(markers), markers)
        return field, note
    categories = present.nunique()
    why = (
        "numbers with leading zeros"
        if leading_zeros
        else "numbers, but named like a code"
        if code_name
        else f"{categories} distinct values"
    )
    note = f"categorical: {why}; {missing_note}"
    return Field(column, "categorical", None, None, not markers, bool(markers), markers, numeric), note


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
