"""Preprocessing, as in the original: min-max scaled numbers, integer-coded categories and two
crossed categories (education x occupation, native_country x occupation).

Code 0 of every categorical column means "unknown": a missing value ('?', null) or a category the
preprocessor was not fitted on. Serving never fails on an unseen category. The fitted state is
plain JSON, and one vectorised code path serves a batch of one row or of thirty thousand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from utils.schema import CATEGORICAL_FIELDS, NUMERIC_FIELDS

FORMAT_VERSION = 1
UNKNOWN_CODE = 0
MISSING_VALUES = frozenset({None, "?", ""})
CROSSED_FIELDS: tuple[tuple[str, str], ...] = (("education", "occupation"), ("native_country", "occupation"))


def crossed_name(pair: tuple[str, str]) -> str:
    return "_x_".join(pair)


NUMERIC_COLUMNS: tuple[str, ...] = tuple(NUMERIC_FIELDS)
CATEGORICAL_COLUMNS: tuple[str, ...] = (*CATEGORICAL_FIELDS, *(crossed_name(pair) for pair in CROSSED_FIELDS))
FEATURE_NAMES: tuple[str, ...] = (*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS)
CATEGORICAL_INDICES: tuple[int, ...] = tuple(range(len(NUMERIC_COLUMNS), len(FEATURE_NAMES)))

Columns = Mapping[str, Sequence[Any]]


class PreprocessorFormatError(ValueError):
    """Saved preprocessor JSON that this code cannot use."""


def add_crossed_columns(columns: Columns) -> dict[str, list]:
    """The crossed features, as strings 'a|b'; a missing part makes the cross missing."""
    crossed: dict[str, list] = {}
    for pair in CROSSED_FIELDS:
        left, right = columns[pair[0]], columns[pair[1]]
        crossed[crossed_name(pair)] = [
            None if a in MISSING_VALUES or b in MISSING_VALUES else f"{a}|{b}" for a, b in zip(left, right, strict=True)
        ]
    return {**{name: list(values) for name, values in columns.items()}, **crossed}


@dataclass(frozen=True)
class Preprocessor:
    numeric_ranges: dict[str, tuple[float, float]]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, columns: Columns) -> Preprocessor:
        columns = add_crossed_columns(columns)
        ranges = {}
        for name in NUMERIC_COLUMNS:
            values = np.asarray(columns[name], dtype=np.float64)
            ranges[name] = (float(values.min()), float(values.max()))
        categories = {
            name: tuple(sorted({v for v in columns[name] if isinstance(v, str) and v not in MISSING_VALUES}))
            for name in CATEGORICAL_COLUMNS
        }
        return cls(ranges, categories)

    def transform(self, columns: Columns) -> np.ndarray:
        """Columns of raw values -> float64 matrix in FEATURE_NAMES order."""
        columns = add_crossed_columns(columns)
        rows = len(columns[NUMERIC_COLUMNS[0]])
        matrix = np.empty((rows, len(FEATURE_NAMES)), dtype=np.float64)
        for index, name in enumerate(NUMERIC_COLUMNS):
            low, high = self.numeric_ranges[name]
            span = high - low if high > low else 1.0
            matrix[:, index] = (np.asarray(columns[name], dtype=np.float64) - low) / span
        codes = self._codes
        for index, name in enumerate(CATEGORICAL_COLUMNS, start=len(NUMERIC_COLUMNS)):
            lookup = codes[name]
            matrix[:, index] = [lookup.get(value, UNKNOWN_CODE) for value in columns[name]]
        return matrix

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        names = (*NUMERIC_COLUMNS, *CATEGORICAL_FIELDS)
        return self.transform({name: [record[name] for record in records] for name in names})

    @property
    def _codes(self) -> dict[str, dict[str, int]]:
        # Cached on first use; frozen dataclasses need object.__setattr__ for that.
        try:
            return self.__dict__["_code_cache"]
        except KeyError:
            codes = {
                name: {value: code for code, value in enumerate(values, start=1)}
                for name, values in self.categories.items()
            }
            object.__setattr__(self, "_code_cache", codes)
            return codes

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "feature_names": list(FEATURE_NAMES),
                "numeric_ranges": {name: list(bounds) for name, bounds in self.numeric_ranges.items()},
                "categories": {name: list(values) for name, values in self.categories.items()},
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        try:
            state = json.loads(text)
            if state["format_version"] != FORMAT_VERSION or tuple(state["feature_names"]) != FEATURE_NAMES:
                raise PreprocessorFormatError(
                    f"preprocessor format {state['format_version']} with features {state['feature_names']} "
                    f"does not match this code (format {FORMAT_VERSION})"
                )
            ranges = {name: (float(low), float(high)) for name, (low, high) in state["numeric_ranges"].items()}
            categories = {name: tuple(str(v) for v in values) for name, values in state["categories"].items()}
        except PreprocessorFormatError:
            raise
        except (ValueError, KeyError, TypeError) as error:
            raise PreprocessorFormatError(f"unreadable preprocessor JSON: {error!r}") from error
        if set(ranges) != set(NUMERIC_COLUMNS) or set(categories) != set(CATEGORICAL_COLUMNS):
            raise PreprocessorFormatError("preprocessor JSON lacks some columns")
        return cls(ranges, categories)
