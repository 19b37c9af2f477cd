"""initialize.py's work: the first model version of a spec (Adult's by default, a spec file with
--spec, or one inferred from a CSV with --data), trained on the spec's data only."""

from __future__ import annotations

import json
import logging
import threading

from train.announce import Announcer
from train.champion import Registry, make_current
from train.mlflow_runs import Tracker, data_input
from train.pipeline import train_version
from train.rollout.trial import Ending, Trials
from train.schema_registration import register_schemas
from train.spark import spark_session
from utils.data import default_spec, load_dataset
from utils.form import Form
from utils.kafka.clients import create_producer
from utils.kafka.interface import KafkaError, ProducerOptions
from utils.messages.events import SUPERSEDED, TrainingCompleted
from utils.mlflow_outage import probe
from utils.model_store import ModelStore, ModelStoreError, VersionMetadata
from utils.schema_registry.client import RegistryClient
from utils.scoring import load_scorer
from utils.settings import InitializeSettings
from utils.spec import DatasetSpec, form_changes, load_spec, to_toml
from utils.spec_inference import infer_spec

log = logging.getLogger(__name__)

ANNOUNCE_TIMEOUT_S = 30.0  # initialize is a command: it does not wait out a Kafka outage


def run(settings: InitializeSettings, stop: threading.Event) -> int:
    store = ModelStore(settings.common.model_store)
    spec = chosen_spec(settings, store)
    if spec is None:
        return 0  # the draft is written; nothing is trained
    if settings.print_json_schema:
        print(json.dumps(Form(spec).json_schema(), indent=2))
        return 0
    current = store.current_version()
    if current is not None and not settings.force:
        log.info(
            "a model already serves, nothing to do version=%s store=%s (use --force to train a new one)",
            current,
            store.root,
        )
        return 0
    if current is not None:
        announce_lineage(store, current, spec)
    schemas = None
    if settings.common.schema_registry_url is not None:  # first: a spec the registry refuses is not trained
        client = RegistryClient(settings.common.schema_registry_url, settings.common.schema_registry_timeout_s)
        schemas = register_schemas(client, spec, settings.schema_format, settings.common.topics)
    probe(settings.common.tracking_uri)  # before the long search: exit 4 at once if MLflow is down
    dataset = load_dataset(spec, settings.download)
    log.info(
        "data loaded spec=%s training_rows=%s holdout_rows=%s fields=%s",
        spec.name,
        len(dataset.training),
        len(dataset.holdout),
        len(spec.fields),
    )
    tracker = Tracker(settings.common.tracking_uri, settings.experiment, settings.registered_model)
    with spark_session(settings.tuning.spark, "initialize") as spark:
        trained = train_version(
            spec,
            dataset.training,
            dataset.holdout,
            settings.tuning,
            store,
            tracker,
            trigger="initialize",
            lineage=VersionMetadata(schemas=schemas),
            extra_evaluations=dataset.evaluations,
            should_stop=stop.is_set,
            inputs=[data_input(spec, dataset.training)],
            spark=spark,
        )
    registry = Registry(settings.common.tracking_uri, settings.registered_model)
    make_current(store, trained.version, registry)
    if current is not None:
        tell_the_services(settings, store, registry, trained.version, trained.metrics, trained.trained_rows, stop)
    store.prune(settings.keep_versions)
    log.info(
        "initial model ready version=%s spec=%s holdout_auc=%.4f store=%s %s",
        trained.version,
        spec.name,
        trained.metrics["holdout_auc"],
        store.root,
        " ".join(
            f"{name}={value:.4f}"
            for name, value in trained.metrics.items()
            if name.endswith("_auc") and name != "holdout_auc"
        ),
    )
    return 0


def chosen_spec(settings: InitializeSettings, store: ModelStore) -> DatasetSpec | None:
    """The spec to train on: inferred from --data (shown; None once written with --write-spec),
    read from --spec, or for --print-json-schema alone the serving version's; Adult's otherwise."""
    if settings.data is not None:
        assert settings.label is not None  # InitializeSettings checks it
        inferred = infer_spec(settings.data, settings.label, settings.positive, settings.ignored)
        draft = to_toml(inferred.spec, inferred.notes)
        if settings.write_spec is not None:
            written = inferred.spec.relative_to(settings.write_spec.parent)
            settings.write_spec.write_text(to_toml(written, inferred.notes), encoding="utf-8")
            print(f"draft spec of {settings.data.name} written to {settings.write_spec}: edit it, then run")
            print(f"  python initialize.py --spec {settings.write_spec}")
            return None
        if not settings.print_json_schema:
            print(
                f"# the spec inferred from {settings.data.name} ({inferred.rows} labelled rows):\n{draft}", flush=True
            )
        return inferred.spec
    if settings.spec is not None:
        return load_spec(settings.spec)
    current = store.current_version()
    if settings.print_json_schema and current is not None:
        return load_scorer(store, current).spec
    return default_spec()


def announce_lineage(store: ModelStore, current: int, spec: DatasetSpec) -> None:
    """Say so when the new version takes another form than the serving one: a new lineage."""
    try:
        serving = load_scorer(store, current).spec
    except ModelStoreError:
        return
    changes = form_changes(serving, spec)
    if changes:
        log.warning(
            "a new lineage: version %s takes another form than the serving one (%s); predictors swap to it "
            "and answer requests of the old form with missing_field or unknown_field",
            (store.latest_version() or 0) + 1,
            changes,
        )


def tell_the_services(
    settings: InitializeSettings,
    store: ModelStore,
    registry: Registry,
    version: int,
    metrics: dict[str, float],
    trained_rows: int,
    stop: threading.Event,
) -> None:
    """A version made current with --force while services may run: a trial in progress is
    superseded, and predictors are told to swap (best effort: without Kafka they serve the new
    version at their next start)."""
    common = settings.common
    producer = create_producer(common.kafka, ProducerOptions("initialize"))
    try:
        trials = Trials(store, registry, Announcer(producer, common.topics.model_events, stop, ANNOUNCE_TIMEOUT_S))
        rollout = store.challenger()
        if rollout is not None:
            trials.end(rollout, Ending(False, SUPERSEDED, f"version {version} was made current by initialize.py"))
        trials.announcer.announce(TrainingCompleted(version, True, metrics, trained_rows, 0))
        log.info("predictors told to serve version=%s topic=%s", version, common.topics.model_events)
    except KafkaError as error:
        log.warning("predictors not told of version=%s (they serve it at their next start) error=%r", version, error)
    finally:
        producer.close(timeout_s=10)
