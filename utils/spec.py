"""A dataset spec: the form the app sends (its fields, their kinds and bounds), the label and which
value is positive, the data file(s) with their SHA-256, how the fixed holdout is chosen, crossed
features and ignored columns. One TOML file (`spec.toml`) declares it; each model version carries
its own copy beside `preprocessor.json`, so the predictor validates a request with the spec of the
version that scores it.

Why TOML: a person edits a draft spec (`initialize.py --write-spec`), so it takes comments and reads
without quoting every key, and Python reads it with its own `tomllib`; any string, `Flight Status`
or `Competitive?`, is a quoted key or value. The project writes the spec itself (`to_toml`), so
nothing beyond the standard library is needed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from utils.settings import PROJECT_ROOT

FORMAT_VERSION = 1
SPEC_FILE = "spec.toml"
Kind = Literal["numeric", "categorical"]
LabelKind = Literal["text", "binary", "boolean"]  # the label's values in the file: any, 0/1, true/false
TRUE_WORDS = ("true", "True", "TRUE")
FALSE_WORDS = ("false", "False", "FALSE")


class SpecError(ValueError):
    """A spec, or a data file it names, that cannot be used: one line saying what to fix."""


@dataclass(frozen=True)
class Field:
    """One field of the form, as the app names it."""

    name: str
    kind: Kind
    minimum: float | None = None  # numeric: the accepted range
    maximum: float | None = None
    required: bool = True  # the key must be in the request's data
    nullable: bool = False  # null is accepted: no value (a numeric is then missing, a category unknown)
    missing: tuple[str, ...] = ()  # the texts that mean "no value" in the data files
    number_like: bool = False  # categorical whose values look like numbers: JSON numbers are accepted too


@dataclass(frozen=True)
class Label:
    column: str
    positive: tuple[str, ...]  # the texts (in the files and in requests) that mean 1
    negative: tuple[str, ...]  # ... and 0
    kind: LabelKind = "text"


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the spec's folder, or absolute
    sha256: str = ""  # of the content (decompressed when the path ends in .gz); empty: not checked
    skip_rows: int = 0  # lines before the data (e.g. a comment line)
    url: str = ""  # where `initialize.py --download` fetches it from (the digest is checked either way)


@dataclass(frozen=True)
class Holdout:
    """The fixed rows every version is compared on, never trained on: a file (from `first_row` on;
    the rows before it are what the sample app streams), or a seeded fraction of the data."""

    file: DataFile | None = None
    first_row: int = 0
    fraction: float = 0.2
    seed: int = 42


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    fields: tuple[Field, ...]
    label: Label
    files: tuple[DataFile, ...]
    holdout: Holdout = Holdout()
    crosses: tuple[tuple[str, str], ...] = ()
    ignore: tuple[str, ...] = ()  # columns of the files that are neither fields nor the label
    header: bool = True  # the files' first line names the columns
    columns: tuple[str, ...] = ()  # the columns, in file order, when there is no header
    skip_initial_space: bool = False  # spaces after each comma are not part of the value
    folder: Path = field(default=Path("."), compare=False)  # where relative paths start

    def __post_init__(self) -> None:
        check(self)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields)

    @property
    def numeric(self) -> tuple[Field, ...]:
        return tuple(item for item in self.fields if item.kind == "numeric")

    @property
    def categorical(self) -> tuple[Field, ...]:
        return tuple(item for item in self.fields if item.kind == "categorical")

    def path_of(self, data_file: DataFile) -> Path:
        path = Path(data_file.path).expanduser()
        return path if path.is_absolute() else self.folder / path

    def form_digest(self) -> str:
        """What a request must look like, as a digest: two versions with the same digest take the
        same requests (a retrain keeps it; `initialize.py --force` with another spec changes it)."""
        cached = self.__dict__.get("_form_digest")  # asked once per batch during a rollout
        if cached is None:
            form = {"fields": [_plain(item) for item in self.fields], "label": _plain(self.label)}
            cached = hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest()
            object.__setattr__(self, "_form_digest", cached)
        return cached

    def relative_to(self, folder: Path) -> DatasetSpec:
        """The same spec, written to live in `folder`: its data paths relative to it where they can be."""

        def moved(data_file: DataFile) -> DataFile:
            path = self.path_of(data_file).resolve()
            try:
                return replace(data_file, path=os.path.relpath(path, folder.resolve()))
            except ValueError:  # another drive
                return replace(data_file, path=str(path))

        holdout = self.holdout
        if holdout.file is not None:
            holdout = replace(holdout, file=moved(holdout.file))
        return replace(self, files=tuple(moved(item) for item in self.files), holdout=holdout, folder=folder.resolve())

    def for_store(self) -> DatasetSpec:
        """The same spec as a model version keeps it: its data paths relative to the project (for the
        bundled data sets) or absolute (a file of the user's), read back from `PROJECT_ROOT`."""

        def stored(data_file: DataFile) -> DataFile:
            path = self.path_of(data_file).resolve()
            try:
                return replace(data_file, path=str(path.relative_to(PROJECT_ROOT)))
            except ValueError:
                return replace(data_file, path=str(path))

        holdout = self.holdout
        if holdout.file is not None:
            holdout = replace(holdout, file=stored(holdout.file))
        return replace(self, files=tuple(stored(item) for item in self.files), holdout=holdout, folder=PROJECT_ROOT)


def _plain(item: Any) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in vars(item).items()}


def check(spec: DatasetSpec) -> None:
    """The rules a spec must follow; SpecError naming the first one it breaks."""
    if not spec.fields:
        raise SpecError("the spec declares no field")
    names = spec.field_names
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SpecError(f"fields declared twice: {duplicates}")
    if spec.label.column in names:
        raise SpecError(f"the label column {spec.label.column!r} is also a field")
    for item in spec.fields:
        if not item.name:
            raise SpecError("a field has an empty name")
        if item.kind == "numeric":
            if item.minimum is None or item.maximum is None:
                raise SpecError(f"numeric field {item.name!r} needs min and max")
            if not (math.isfinite(item.minimum) and math.isfinite(item.maximum)) or item.minimum > item.maximum:
                raise SpecError(f"numeric field {item.name!r}: min {item.minimum} and max {item.maximum} do not fit")
    label = spec.label
    if not label.positive or not label.negative or set(label.positive) & set(label.negative):
        raise SpecError(f"label {label.column!r} needs positive and negative values, none in both")
    for left, right in spec.crosses:
        for name in (left, right):
            if name not in names or next(f for f in spec.fields if f.name == name).kind != "categorical":
                raise SpecError(f"cross {left!r} x {right!r}: {name!r} is not a categorical field")
    if not spec.files:
        raise SpecError("the spec names no data file")
    if not spec.header and not spec.columns:
        raise SpecError("files without a header need `columns`")
    if spec.holdout.file is None and not 0.0 < spec.holdout.fraction < 1.0:
        raise SpecError(f"holdout fraction must be between 0 and 1, got {spec.holdout.fraction}")


def form_changes(old: DatasetSpec, new: DatasetSpec) -> str:
    """What a request of the old form meets in the new one, in one line ("" if nothing)."""
    before, after = {item.name: item for item in old.fields}, {item.name: item for item in new.fields}
    parts = []
    if added := [name for name in after if name not in before]:
        parts.append(f"fields added {added}")
    if removed := [name for name in before if name not in after]:
        parts.append(f"fields removed {removed}")
    if changed := [name for name in after if name in before and after[name] != before[name]]:
        parts.append(f"fields changed {changed}")
    if old.label != new.label:
        parts.append(f"label {old.label.column!r} -> {new.label.column!r}")
    return "; ".join(parts)


# --- Reading and writing ---


def load_spec(path: Path) -> DatasetSpec:
    """The spec in a TOML file; SpecError (one line) if it cannot be read or used."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise SpecError(f"cannot read the spec {path}: {error.strerror or error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"{path} is not valid TOML: {error}") from error
    return spec_from_dict(document, Path(path).resolve().parent, str(path))


def spec_from_text(text: str, folder: Path = PROJECT_ROOT) -> DatasetSpec:
    try:
        return spec_from_dict(tomllib.loads(text), folder, SPEC_FILE)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{SPEC_FILE} is not valid TOML: {error}") from error


def spec_from_dict(document: Mapping[str, Any], folder: Path, where: str = SPEC_FILE) -> DatasetSpec:
    try:
        if document.get("format", FORMAT_VERSION) != FORMAT_VERSION:
            raise SpecError(f"{where}: spec format {document.get('format')} is not {FORMAT_VERSION}")
        data = document["data"]
        label = document["label"]
        holdout = document.get("holdout", {})
        holdout_file = holdout.get("file")
        return DatasetSpec(
            name=str(document["name"]),
            fields=tuple(_field(item) for item in document["field"]),
            label=Label(
                str(label["column"]),
                _texts(label["positive"]),
                _texts(label["negative"]),
                label.get("kind", "text"),
            ),
            files=tuple(_data_file(item) for item in data["file"]),
            holdout=Holdout(
                file=_data_file(holdout_file) if holdout_file is not None else None,
                first_row=int(holdout.get("first_row", 0)),
                fraction=float(holdout.get("fraction", 0.2)),
                seed=int(holdout.get("seed", 42)),
            ),
            crosses=tuple(_pair(item["fields"]) for item in document.get("cross", [])),
            ignore=_texts(data.get("ignore", [])),
            header=bool(data.get("header", True)),
            columns=_texts(data.get("columns", [])),
            skip_initial_space=bool(data.get("skip_initial_space", False)),
            folder=folder,
        )
    except SpecError:
        raise
    except KeyError as error:
        raise SpecError(f"{where}: missing {error.args[0]!r}") from error
    except (TypeError, ValueError, AttributeError) as error:
        raise SpecError(f"{where}: {error}") from error


def _texts(values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise SpecError(f"expected a list of strings, got {values!r}")
    return tuple(str(value) for value in values)


def _pair(values: Any) -> tuple[str, str]:
    names = _texts(values)
    if len(names) != 2:
        raise SpecError(f"a cross joins two fields, got {list(names)}")
    return names[0], names[1]


def _field(item: Mapping[str, Any]) -> Field:
    kind = item["kind"]
    if kind not in ("numeric", "categorical"):
        raise SpecError(f"field {item.get('name')!r}: kind must be numeric or categorical, got {kind!r}")
    return Field(
        name=str(item["name"]),
        kind=kind,
        minimum=float(item["min"]) if "min" in item else None,
        maximum=float(item["max"]) if "max" in item else None,
        required=bool(item.get("required", True)),
        nullable=bool(item.get("nullable", False)),
        missing=_texts(item.get("missing", [])),
        number_like=bool(item.get("number_like", False)),
    )


def _data_file(item: Any) -> DataFile:
    if isinstance(item, str):
        return DataFile(item)
    return DataFile(
        str(item["path"]), str(item.get("sha256", "")), int(item.get("skip_rows", 0)), str(item.get("url", ""))
    )


def to_toml(spec: DatasetSpec, comments: Mapping[str, str] | None = None) -> str:
    """The spec as TOML, in the layout `load_spec` reads; `comments[field name]` is written above
    that field (what inference saw)."""
    comments = comments or {}
    lines = [
        "# A dataset spec (docs/your-own-data.md): the form the app sends and the data behind it.",
        f"name = {_toml(spec.name)}",
        f"format = {FORMAT_VERSION}",
        "",
        "[label]",
        f"column = {_toml(spec.label.column)}",
        f"kind = {_toml(spec.label.kind)}  # the label's values in the files: text, binary (0/1), boolean",
        f"positive = {_toml(list(spec.label.positive))}",
        f"negative = {_toml(list(spec.label.negative))}",
        "",
        "[data]",
        f"header = {_toml(spec.header)}",
    ]
    if spec.columns:
        lines.append(f"columns = {_toml(list(spec.columns))}")
    lines += [
        f"skip_initial_space = {_toml(spec.skip_initial_space)}",
        f"ignore = {_toml(list(spec.ignore))}  # columns that are neither fields nor the label",
    ]
    for data_file in spec.files:
        lines += ["", "[[data.file]]", *_file_lines(data_file)]
    lines += ["", "[holdout]  # the fixed rows every version is compared on, never trained on"]
    if spec.holdout.file is not None:
        lines += [f"first_row = {spec.holdout.first_row}", "", "[holdout.file]", *_file_lines(spec.holdout.file)]
    else:
        lines += [f"fraction = {_toml(spec.holdout.fraction)}", f"seed = {spec.holdout.seed}"]
    for left, right in spec.crosses:
        lines += ["", "[[cross]]", f"fields = {_toml([left, right])}"]
    for item in spec.fields:
        lines.append("")
        if item.name in comments:
            lines.append(f"# {comments[item.name]}")
        lines += ["[[field]]", f"name = {_toml(item.name)}", f"kind = {_toml(item.kind)}"]
        if item.kind == "numeric":
            lines += [f"min = {_toml(item.minimum)}", f"max = {_toml(item.maximum)}"]
        lines += [
            f"required = {_toml(item.required)}",
            f"nullable = {_toml(item.nullable)}",
            f"missing = {_toml(list(item.missing))}",
        ]
        if item.kind == "categorical":
            lines.append(f"number_like = {_toml(item.number_like)}")
    return "\n".join(lines) + "\n"


def _file_lines(data_file: DataFile) -> list[str]:
    lines = [f"path = {_toml(data_file.path)}", f"sha256 = {_toml(data_file.sha256)}"]
    if data_file.skip_rows:
        lines.append(f"skip_rows = {data_file.skip_rows}")
    if data_file.url:
        lines.append(f"url = {_toml(data_file.url)}")
    return lines


def _toml(value: Any) -> str:
    """A TOML value: JSON's string escapes are TOML's basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")
