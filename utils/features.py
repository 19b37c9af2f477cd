"""Preprocessing, as in the original, for any spec: min-max scaled numbers, integer-coded
categories and the spec's crossed categories (Adult: education x occupation, native_country x
occupation).

Code 0 of every categorical column means "unknown": a missing value (null, or a marker such as '?')
or a category the preprocessor was not fitted on. Serving never fails on an unseen category. A
missing number stays missing (NaN), which LightGBM handles itself. The fitted state is plain JSON,
and one vectorised code path serves a batch of one row or of thirty thousand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from utils.spec import DatasetSpec

FORMAT_VERSION = 1
UNKNOWN_CODE = 0

Columns = Mapping[str, Sequence[Any]]


class PreprocessorFormatError(ValueError):
    """Saved preprocessor JSON that this code (or this spec) cannot use."""


def crossed_name(pair: tuple[str, str]) -> str:
    return "_x_".join(pair)


@dataclass(frozen=True)
class FeatureLayout:
    """The model's input columns for a spec: its numeric fields, its categorical fields, then the
    crosses, each in the spec's order."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    crosses: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, spec: DatasetSpec) -> FeatureLayout:
        return cls(
            tuple(item.name for item in spec.numeric), tuple(item.name for item in spec.categorical), spec.crosses
        )

    @property
    def categorical_columns(self) -> tuple[str, ...]:
        return (*self.categorical, *(crossed_name(pair) for pair in self.crosses))

    @property
    def names(self) -> tuple[str, ...]:
        """Input columns, as the app names the fields (explanations use these)."""
        return (*self.numeric, *self.categorical_columns)

    @property
    def categorical_indices(self) -> tuple[int, ...]:
        return tuple(range(len(self.numeric), len(self.names)))

    @property
    def model_names(self) -> tuple[str, ...]:
        """The same columns with names LightGBM accepts in its model file (letters, digits, `_`)."""
        safe: list[str] = []
        for index, name in enumerate(self.names):
            cleaned = re.sub(r"[^0-9A-Za-z_]", "_", name) or f"column_{index}"
            safe.append(cleaned if cleaned not in safe else f"{cleaned}_{index}")
        return tuple(safe)


def add_crossed_columns(columns: Columns, crosses: Sequence[tuple[str, str]]) -> dict[str, list]:
    """The crossed features, as strings 'a|b'; a missing part makes the cross missing."""
    crossed: dict[str, list] = {}
    for pair in crosses:
        left, right = columns[pair[0]], columns[pair[1]]
        crossed[crossed_name(pair)] = [
            None if a is None or b is None else f"{a}|{b}" for a, b in zip(left, right, strict=True)
        ]
    return {**{name: list(values) for name, values in columns.items()}, **crossed}


@dataclass(frozen=True)
class Preprocessor:
    layout: FeatureLayout
    numeric_ranges: dict[str, tuple[float, float]]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, spec: DatasetSpec, columns: Columns) -> Preprocessor:
        """Fitted on columns of validated values (None: no value)."""
        layout = FeatureLayout.of(spec)
        columns = add_crossed_columns(columns, layout.crosses)
        ranges = {}
        for name in layout.numeric:
            values = np.asarray(columns[name], dtype=np.float64)
            values = values[np.isfinite(values)]
            ranges[name] = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        categories = {
            name: tuple(sorted({v for v in columns[name] if isinstance(v, str)})) for name in layout.categorical_columns
        }
        return cls(layout, ranges, categories)

    def transform(self, columns: Columns) -> np.ndarray:
        """Columns of validated values -> float64 matrix in the layout's order."""
        layout = self.layout
        columns = add_crossed_columns(columns, layout.crosses)
        rows = len(next(iter(columns.values()))) if columns else 0
        matrix = np.empty((rows, len(layout.names)), dtype=np.float64)
        for index, name in enumerate(layout.numeric):
            low, high = self.numeric_ranges[name]
            span = high - low if high > low else 1.0
            matrix[:, index] = (np.asarray(columns[name], dtype=np.float64) - low) / span
        codes = self._codes
        for index, name in enumerate(layout.categorical_columns, start=len(layout.numeric)):
            lookup = codes[name]
            matrix[:, index] = [lookup.get(value, UNKNOWN_CODE) for value in columns[name]]
        return matrix

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        names = (*self.layout.numeric, *self.layout.categorical)
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
                "feature_names": list(self.layout.names),
                "numeric_ranges": {name: list(bounds) for name, bounds in self.numeric_ranges.items()},
                "categories": {name: list(values) for name, values in self.categories.items()},
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str, spec: DatasetSpec) -> Preprocessor:
        layout = FeatureLayout.of(spec)
        try:
            state = json.loads(text)
            if state["format_version"] != FORMAT_VERSION or tuple(state["feature_names"]) != layout.names:
                raise PreprocessorFormatError(
                    f"preprocessor format {state['format_version']} with features {state['feature_names']} "
                    f"does not match the spec {spec.name!r} (format {FORMAT_VERSION})"
                )
            ranges = {name: (float(low), float(high)) for name, (low, high) in state["numeric_ranges"].items()}
            categories = {name: tuple(str(v) for v in values) for name, values in state["categories"].items()}
        except PreprocessorFormatError:
            raise
        except (ValueError, KeyError, TypeError) as error:
            raise PreprocessorFormatError(f"unreadable preprocessor JSON: {error!r}") from error
        if set(ranges) != set(layout.numeric) or set(categories) != set(layout.categorical_columns):
            raise PreprocessorFormatError("preprocessor JSON lacks some columns")
        return cls(layout, ranges, categories)

    def sample_records(self, count: int, seed: int = 0) -> list[dict[str, Any]]:
        """Forms drawn over the fitted ranges and categories (some values missing, some categories
        unseen), for checks that need rows of any kind."""
        random = np.random.RandomState(seed)
        columns: dict[str, list[Any]] = {}
        for name, (low, high) in self.numeric_ranges.items():
            values = random.uniform(low, high, count)
            columns[name] = [None if random.rand() < 0.02 else float(value) for value in values]
        for name in self.layout.categorical:
            choices = [*self.categories[name], None, "<unseen>"]
            columns[name] = [choices[i] for i in random.randint(0, len(choices), count)]
        return [{name: column[i] for name, column in columns.items()} for i in range(count)]

    def sample_record(self) -> dict[str, Any]:
        """A plausible form: the middle of each fitted range, the first category of each field."""
        record: dict[str, Any] = {name: (low + high) / 2 for name, (low, high) in self.numeric_ranges.items()}
        for name in self.layout.categorical:
            record[name] = self.categories[name][0] if self.categories[name] else None
        return record
