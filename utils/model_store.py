"""Numbered model versions on disk, published atomically.

Layout: `<root>/<n>/{model.txt, preprocessor.json, spec.toml, reference.json, metadata.json}`,
`<root>/CURRENT` holding the
number of the serving version and, during a rollout, `<root>/CHALLENGER` describing the version on
trial. A version is written in a temporary folder and renamed into place,
and CURRENT is replaced with os.replace, so no reader ever sees half of either. Everything is text
(LightGBM's native model format and JSON): nothing is pickled.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from utils.messages.codec import MessageError, record_from_dict
from utils.messages.events import DIRECT, ChallengerStarted, DecidedBy, event_from_dict
from utils.spec import SPEC_FILE  # the form the version takes and the data it was trained on

log = logging.getLogger(__name__)

MODEL_FILE = "model.txt"
PREPROCESSOR_FILE = "preprocessor.json"

REFERENCE_FILE = "reference.json"  # holdout rows and LightGBM's scores of them (utils/scoring.py)
REQUIRED_FILES = frozenset({MODEL_FILE, PREPROCESSOR_FILE})  # versions from before specs have only these
VERSION_FILES = REQUIRED_FILES | {SPEC_FILE, REFERENCE_FILE}
METADATA_FILE = "metadata.json"
POINTER_FILE = "CURRENT"
HISTORY_FILE = "HISTORY"  # every version ever made current, one per line, oldest first
CHALLENGER_FILE = "CHALLENGER"  # the version on trial during a shadow or canary rollout (JSON)
VERSION_DIR = re.compile(r"^[1-9][0-9]*$")
TEMP_PREFIX = ".incoming-"
# How a store version appears in the MLflow registry: its folder is logged as this artifact of its
# training run, and the registry alias that follows promotions.
REGISTRY_ARTIFACT = "model_store_version"
CHAMPION_ALIAS = "champion"


class ModelStoreError(RuntimeError):
    """A version that is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class TrainedUnder:
    """The rollout a version was trained under: a version that passes the holdout gate under a
    shadow or canary rollout serves only after its trial."""

    mode: str = DIRECT  # "direct", "shadow" or "canary"
    canary_fraction: float = 0.0


@dataclass(frozen=True)
class SchemaIds:
    """The schema registry's ids of what a version serves (docs/schema-registry.md): its requests'
    schema (under `<app topic>-value`) and its answers' (under `<predictions topic>-value`)."""

    format: str  # "json" (JSON Schema) or "avro"
    request_subject: str
    request_id: int
    answer_subject: str
    answer_id: int

    def tags(self) -> dict[str, str]:
        """For the version's MLflow run."""
        return {
            "schema_format": self.format,
            "request_schema": f"{self.request_subject}:{self.request_id}",
            "answer_schema": f"{self.answer_subject}:{self.answer_id}",
        }


@dataclass(frozen=True)
class RolloutDecision:
    """How a version's trial ended, written before it is carried out (so a restart finishes it)."""

    promoted: bool
    decided_by: DecidedBy
    reason: str = ""
    mode: str = ""
    champion_version: int = 0
    figures: dict[str, Any] | None = None  # the live figures it was decided on (train/rollout/judgement.py)


@dataclass(frozen=True)
class RetrainCause:
    """Why a version was retrained, for one reason (count, drift, quality, time): the newest request
    that gave it, its evidence (the figures the predictor's trigger fired on), the newest version
    its predictor knew of, and how many coalesced requests gave this reason."""

    reason: str
    requested_by: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    newest_version_known: int = 0
    requests: int = 1


@dataclass(frozen=True)
class VersionMetadata:
    """`<n>/metadata.json`: how a version was made, how it did, and what was decided about it.
    `version`, `created_at` and `checksums` are set by `ModelStore.publish`."""

    version: int = 0
    created_at: str = ""
    checksums: dict[str, str] = field(default_factory=dict)
    trigger: str = ""  # initialize, retrain
    params: dict[str, Any] = field(default_factory=dict)  # LightGBM's, found by the tuning
    num_boost_round: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # holdout_auc, ... (train/evaluate.py)
    trained_rows: int = 0
    tuning: dict[str, Any] = field(default_factory=dict)  # library, trials
    lightgbm_version: str = ""
    mlflow_run_id: str = ""
    promoted: bool = True  # the holdout gate's verdict (versions from before the gate: True)
    promotion_reason: str = ""
    spec_name: str = ""  # the dataset spec it was trained on, and its form's digest (utils/spec.py)
    form_digest: str = ""
    observations_end_offset: int = 0  # trained on the observations before this offset
    new_rows: int = 0
    replaces_version: int | None = None
    replaces_mlflow_run_id: str = ""
    rollout: TrainedUnder = TrainedUnder()
    rollout_decision: RolloutDecision | None = None
    schemas: SchemaIds | None = None  # registered with a schema registry (none: plain JSON only)
    retrain_causes: dict[str, RetrainCause] = field(default_factory=dict)  # by reason (retrains only)
    # What MLflow gets beside the above, so that a retrain interrupted by an MLflow outage can be
    # recorded later from the store alone (Tracker.ensure_recorded).
    extra_metrics: dict[str, float] = field(default_factory=dict)
    tracking_tags: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per training phase
    other: dict[str, Any] = field(default_factory=dict)  # keys this code does not know, kept as they are

    def to_json(self) -> str:
        record = asdict(self)
        other = record.pop("other")
        return json.dumps({**other, **record}, indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> VersionMetadata:
        """Raises KeyError, TypeError or ValueError for a record that does not fit."""
        known = {item.name for item in fields(cls)} - {"other"}
        metadata = record_from_dict(cls, {name: value for name, value in record.items() if name in known})
        return replace(metadata, other={name: value for name, value in record.items() if name not in known})


class ModelStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def versions(self) -> list[int]:
        if not self.root.is_dir():
            return []
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and VERSION_DIR.match(p.name))

    def latest_version(self) -> int | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def require(self, version: int | None) -> int:
        """`version`, or ModelStoreError if there is none (an empty store: run initialize.py)."""
        if version is None:
            raise ModelStoreError(f"no model version in {self.root}: run `python initialize.py` first")
        return version

    def current_version(self) -> int | None:
        try:
            text = (self.root / POINTER_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        if not text.isdigit():
            raise ModelStoreError(f"{self.root / POINTER_FILE} holds {text!r}, not a version number")
        return int(text)

    def promotion_history(self) -> list[int]:
        """Versions in the order they were made current (a rollback appends the older one again)."""
        try:
            lines = (self.root / HISTORY_FILE).read_text().splitlines()
        except FileNotFoundError:
            return []
        return [int(line.split()[0]) for line in lines if line.strip()]

    def path_of(self, version: int) -> Path:
        return self.root / str(int(version))

    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """Serialises writers (trainer, initialize, rollback); readers never need it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def publish(self, files: Mapping[str, bytes], metadata: VersionMetadata) -> int:
        """Write the next version atomically and return its number (CURRENT is not changed)."""
        with self._writer_lock():
            self.remove_incomplete()
            version = (self.latest_version() or 0) + 1
            staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.root))
            try:
                for name, content in files.items():
                    (staging / name).write_bytes(content)
                published = replace(
                    metadata,
                    version=version,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    checksums={name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
                )
                (staging / METADATA_FILE).write_text(published.to_json())
                for path in staging.iterdir():
                    _fsync(path)
                staging.chmod(0o755)
                os.rename(staging, self.path_of(version))
                _fsync(self.root)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        log.info("model version published version=%s path=%s", version, self.path_of(version))
        return version

    def set_current(self, version: int) -> None:
        if version not in self.versions():
            raise ModelStoreError(f"version {version} is not in {self.root}")
        with self._writer_lock():
            _replace_text(self.root / POINTER_FILE, f"{version}\n")
            with open(self.root / HISTORY_FILE, "a") as history:
                history.write(f"{version} {datetime.now(UTC).isoformat(timespec='seconds')}\n")
            _fsync(self.root)
        log.info("current model version set version=%s", version)

    def challenger(self) -> ChallengerStarted | None:
        """The rollout in progress, or None."""
        path = self.root / CHALLENGER_FILE
        try:
            record = json.loads(path.read_text())
            event = event_from_dict({**record, "event": ChallengerStarted.EVENT})
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, MessageError) as error:
            raise ModelStoreError(f"{path} is not a rollout record ({error})") from error
        assert isinstance(event, ChallengerStarted)
        return event

    def set_challenger(self, rollout: ChallengerStarted | None) -> None:
        """Start (a rollout) or end (None) a rollout, atomically."""
        with self._writer_lock():
            path = self.root / CHALLENGER_FILE
            if rollout is None:
                path.unlink(missing_ok=True)
            else:
                _replace_text(path, json.dumps(rollout.to_dict(), sort_keys=True))
            _fsync(self.root)
        log.info("challenger %s", f"set version={rollout.version}" if rollout else "cleared")

    def update_metadata(self, version: int, **changes: Any) -> VersionMetadata:
        """Change a published version's metadata (its timings, a rollout's decision); its files and
        checksums stay. Returns the new metadata."""
        with self._writer_lock():
            metadata = replace(self.metadata(version), **changes)
            _replace_text(self.path_of(version) / METADATA_FILE, metadata.to_json())
        return metadata

    def metadata(self, version: int) -> VersionMetadata:
        path = self.path_of(version) / METADATA_FILE
        try:
            return VersionMetadata.from_dict(json.loads(path.read_text()))
        except FileNotFoundError as error:
            raise ModelStoreError(f"version {version} does not exist in {self.root}") from error
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise ModelStoreError(f"version {version}: unreadable metadata ({error!r})") from error

    def read_verified(self, version: int) -> dict[str, bytes]:
        """The files of a version, after checking each against the checksum in its metadata."""
        checksums = self.metadata(version).checksums
        if not REQUIRED_FILES <= set(checksums) <= VERSION_FILES:
            raise ModelStoreError(f"version {version}: metadata lists files {sorted(checksums)}")
        files = {}
        for name, expected in checksums.items():
            try:
                content = (self.path_of(version) / name).read_bytes()
            except OSError as error:
                raise ModelStoreError(f"version {version}: cannot read {name} ({error})") from error
            if hashlib.sha256(content).hexdigest() != expected:
                raise ModelStoreError(f"version {version}: {name} does not match its checksum (corrupt or truncated)")
            files[name] = content
        return files

    def prune(self, keep: int) -> list[int]:
        """Delete the oldest versions beyond `keep`; never the current one nor the newest."""
        with self._writer_lock():
            current = self.current_version()
            versions = self.versions()
            protected = {current, versions[-1] if versions else None}
            removable = [v for v in versions if v not in protected]
            excess = max(0, len(versions) - max(keep, 1))
            removed = removable[:excess]
            for version in removed:
                shutil.rmtree(self.path_of(version))
        if removed:
            log.info("pruned model versions removed=%s keep=%s", removed, keep)
        return removed

    def remove_incomplete(self) -> None:
        """Temporary folders left by a writer that was killed mid-publish."""
        if self.root.is_dir():
            for path in self.root.glob(TEMP_PREFIX + "*"):
                shutil.rmtree(path, ignore_errors=True)


def _replace_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of either."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    _fsync(temporary)
    os.replace(temporary, path)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
