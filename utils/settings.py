"""Every setting of every service, declared once.

Each field that a user may set carries its flag, environment variable, help and (through its type)
its parser and allowed values: `utils/cli.py` builds each script's argparse parser, reads and checks
the environment, and writes the docs' configuration tables from these declarations alone. Flags
override environment variables, which override the defaults written here. A field without an
`option(...)` is a constant of the code, not a setting. Nothing here touches the network or the disk.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_BOOTSTRAP_SERVERS = "localhost:9092"
DEFAULT_TRACKING_URI = f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
DEFAULT_ARTIFACT_ROOT = PROJECT_ROOT / "mlartifacts"
DEFAULT_MODEL_STORE = PROJECT_ROOT / "models"
DEFAULT_EXPERIMENT = "adult-income"
DEFAULT_REGISTERED_MODEL = "adult-income-lightgbm"
DEFAULT_KEEP_VERSIONS = 20
TOPIC_PREFIX_ENV = "PIPELINE_TOPIC_PREFIX"
MODEL_EVENTS_ENV = "PIPELINE_MODEL_EVENTS_TOPIC"

KafkaClient = Literal["kafka-python", "confluent"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]
SearchLibrary = Literal["hyperopt", "skopt", "hyperparameterhunter"]
ScorerChoice = Literal["auto", "lightgbm", "compiled"]
ModelSource = Literal["local", "mlflow"]
ProcessingGuarantee = Literal["at-least-once", "exactly-once"]
RolloutMode = Literal["direct", "shadow", "canary"]
RolloutJudgement = Literal["sequential", "fixed"]
SchemaFormat = Literal["json", "avro"]  # what initialize registers in the schema registry


class SettingsError(ValueError):
    """Settings that cannot work together; the entry script says why in one line and exits 2."""


# --- Value parsers: text (a flag or an environment variable) -> value, or ValueError saying why. ---


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be >= 1, got {value}")
    return value


def nonnegative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def nonnegative_float(text: str) -> float:
    value = float(text)
    if not value >= 0.0:  # also refuses nan
        raise ValueError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0.0:  # also refuses nan
        raise ValueError(f"must be > 0, got {value}")
    return value


def niceness(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 19:
        raise ValueError(f"must be a niceness from 0 to 19, got {value}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"must be in (0, 1], got {value}")
    return value


def http_url(text: str) -> str:
    scheme, _, rest = text.partition("://")
    if scheme not in ("http", "https") or not rest.strip("/"):
        raise ValueError(f"must be an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def resolved_path(text: str) -> Path:
    return Path(text).expanduser().resolve()


PositiveInt = Annotated[int, positive]
NonNegativeInt = Annotated[int, nonnegative]
NonNegativeFloat = Annotated[float, nonnegative_float]
PositiveFloat = Annotated[float, positive_float]
Niceness = Annotated[int, niceness]
Fraction = Annotated[float, fraction]
ResolvedPath = Annotated[Path, resolved_path]
HttpUrl = Annotated[str, http_url]


@dataclass(frozen=True)
class Option:
    """How users set one field. `flag` None: `--<field name with dashes>`; `cli=False`: only from
    the environment; `default_from(env)`: a default that depends on the environment (topic names
    and their prefix)."""

    help: str
    flag: str | None = None
    env: str | None = None
    aliases: tuple[str, ...] = ()
    cli: bool = True
    positional: bool = False
    upper: bool = False  # the value is upper-cased before it is checked (log levels)
    default_from: Callable[[Mapping[str, str]], Any] | None = None
    env_note: str = ""  # for the docs, when the environment enters through `default_from`


OPTION = "option"


def option(default: Any, help: str, **how: Any) -> Any:
    """A field users may set (see `Option` for `how`)."""
    return field(default=default, metadata={OPTION: Option(help, **how)})


# --- Kafka ---


def _prefixed(name: str) -> Callable[[Mapping[str, str]], str]:
    return lambda env: env.get(TOPIC_PREFIX_ENV, "") + name


def _model_events_default(env: Mapping[str, str]) -> str:
    named = env.get(MODEL_EVENTS_ENV, "")
    return env.get(TOPIC_PREFIX_ENV, "") + named if named else ""


def _topic(name: str, flag: str, help: str) -> Any:
    return option(name, help, flag=flag, default_from=_prefixed(name), env_note=f"{TOPIC_PREFIX_ENV} + `{name}`")


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the cluster. The password never appears in repr() or logs."""

    bootstrap_servers: str = option(DEFAULT_BOOTSTRAP_SERVERS, "comma-separated brokers", env="KAFKA_BOOTSTRAP_SERVERS")
    security_protocol: SecurityProtocol = option(
        "PLAINTEXT", "how to talk to the brokers", env="KAFKA_SECURITY_PROTOCOL"
    )
    sasl_mechanism: SaslMechanism | None = option(None, "SASL mechanism", env="KAFKA_SASL_MECHANISM")
    sasl_username: str | None = option(None, "SASL user", env="KAFKA_SASL_USERNAME")
    sasl_password: str | None = field(
        default=None,
        repr=False,
        metadata={
            OPTION: Option("SASL password; prefer the environment: flags show up in `ps`", env="KAFKA_SASL_PASSWORD")
        },
    )
    ssl_cafile: str | None = option(None, "CA certificate(s) to trust (PEM)", env="KAFKA_SSL_CAFILE")
    ssl_certfile: str | None = option(None, "client certificate (PEM), for mutual TLS", env="KAFKA_SSL_CERTFILE")
    ssl_keyfile: str | None = option(None, "client key (PEM), for mutual TLS", env="KAFKA_SSL_KEYFILE")
    # 0 (the default) lets the pipeline choose from the brokers it finds: replicated three times,
    # two in sync, on three or more (one broker may fail without losing an acknowledged record),
    # the broker's own defaults on fewer.
    replication_factor: NonNegativeInt = option(
        0,
        "replicas of each topic the pipeline creates (0: 3 on three or more brokers, else the broker's default)",
        env="KAFKA_REPLICATION_FACTOR",
    )
    min_insync_replicas: NonNegativeInt = option(
        0,
        "replicas that must have a record before it is acknowledged, on the topics the pipeline creates "
        "(0: 2 on three or more brokers, else the broker's default)",
        env="KAFKA_MIN_INSYNC_REPLICAS",
    )
    # librdkafka by default: faster on every kind of traffic (docs/performance.md); kafka-python,
    # the original's client, stays supported and tested.
    client: KafkaClient = option(
        "confluent",
        "Kafka client library: confluent (confluent-kafka, on librdkafka) or kafka-python",
        flag="--kafka-client",
        env="KAFKA_CLIENT",
    )

    def __post_init__(self) -> None:
        if self.replication_factor and self.min_insync_replicas > self.replication_factor:
            raise SettingsError(
                f"--min-insync-replicas {self.min_insync_replicas} is more than --replication-factor "
                f"{self.replication_factor}: no write could ever be acknowledged"
            )


@dataclass(frozen=True)
class Topics:
    """Topic names; tests give each run its own through PIPELINE_TOPIC_PREFIX.

    `retrain` carries what predictors say (retrain requests, refused models), `model_events` what the
    trainer and operators say (a new version, a rollout, a rollback). By default both are one topic,
    as in the original; with ACLs they are two, so that the broker can enforce who may say what."""

    app_messages: str = _topic("app_messages", "--app-topic", "requests from the app")
    predictions: str = _topic("predictions", "--predictions-topic", "answers to the app")
    retrain: str = _topic("retrain_topic", "--retrain-topic", "what predictors say: retrain requests, refused models")
    observations: str = _topic("observations", "--observations-topic", "labelled requests, the retraining data")
    dead_letter: str = _topic("app_messages_dlq", "--dlq-topic", "records that cannot be answered")
    model_events: str = option(
        "",
        "what the trainer and operators say: new versions, rollouts, rollbacks (empty: the retrain topic)",
        flag="--model-events-topic",
        default_from=_model_events_default,
        env_note=f"{TOPIC_PREFIX_ENV} + {MODEL_EVENTS_ENV}",
    )

    def __post_init__(self) -> None:
        if not self.model_events:
            object.__setattr__(self, "model_events", self.retrain)

    def partitions(self) -> dict[str, int]:
        """Partition count of each topic. Observations and both event topics stay on one partition
        so that their offsets are a global, ordered count (retrains every N observations of the
        whole consumer group, not N per predictor)."""
        return {
            self.app_messages: 4,
            self.predictions: 4,
            self.retrain: 1,
            self.observations: 1,
            self.dead_letter: 1,
            self.model_events: 1,
        }

    def with_prefix(self, prefix: str) -> Topics:
        return Topics(
            app_messages=prefix + self.app_messages,
            predictions=prefix + self.predictions,
            retrain=prefix + self.retrain,
            observations=prefix + self.observations,
            dead_letter=prefix + self.dead_letter,
            model_events=prefix + self.model_events,
        )


@dataclass(frozen=True)
class CommonSettings:
    """What every service shares: the cluster, the topics, MLflow, the model store, logging."""

    kafka: KafkaSettings = KafkaSettings()
    topics: Topics = Topics()
    tracking_uri: str = option(
        DEFAULT_TRACKING_URI, "MLflow tracking URI (default: the SQLite file mlflow.db)", env="MLFLOW_TRACKING_URI"
    )
    model_store: ResolvedPath = option(DEFAULT_MODEL_STORE, "folder of model versions", env="MODEL_STORE_DIR")
    log_level: LogLevel = option(
        "INFO", "DEBUG also shows the client libraries' own lines", env="LOG_LEVEL", upper=True
    )
    log_format: LogFormat = option("text", "json: one JSON object per line", env="LOG_FORMAT")
    schema_registry_url: HttpUrl | None = option(
        None,
        "schema registry API base, e.g. http://localhost:8081/apis/ccompat/v7 (none: plain JSON only; "
        "docs/schema-registry.md)",
        env="SCHEMA_REGISTRY_URL",
    )
    schema_registry_timeout_s: PositiveFloat = option(
        2.0,
        "longest wait for one schema registry call; the predictor asks on its serving thread, once per unknown "
        "schema id (then answers schema_unavailable)",
        env="SCHEMA_REGISTRY_TIMEOUT_S",
    )


# --- Training ---


@dataclass(frozen=True)
class SparkSettings:
    """Where Hyperopt's trials run (docs/spark.md). No master: in this process."""

    master: str | None = option(
        None,
        "run the trials on Spark (hyperopt.SparkTrials): local[2], spark://host:7077, yarn... (none: here)",
        flag="--spark-master",
        env="SPARK_MASTER",
    )
    parallelism: NonNegativeInt = option(0, "trials at once on Spark (0: the cluster's task slots)")
    python: str = option(
        sys.executable,
        "Python interpreter of the executors (default: this one)",
        flag="--pyspark-python",
        env="PYSPARK_PYTHON",
    )
    log_dir: Path = PROJECT_ROOT / "logs"  # Spark's own output: logs/spark-<service>.log


@dataclass(frozen=True)
class TuningSettings:
    """The hyperparameter search."""

    hyper: SearchLibrary = option("hyperopt", "search library; hyperparameterhunter is an alias of skopt")
    max_evals: PositiveInt = option(50, "tuning trials")
    threads: int = option(0, "LightGBM threads (0: all cores)")
    seed: int = option(42, "seed of the search and of LightGBM")
    spark: SparkSettings = SparkSettings()

    def __post_init__(self) -> None:
        if self.spark.master and self.hyper != "hyperopt":
            raise SettingsError(f"--spark-master runs hyperopt trials only, not --hyper {self.hyper}")


@dataclass(frozen=True)
class BackgroundSettings:
    """Work beside serving: a new version's load, compiled build and check (predictor), the compiled
    build ahead of the predictors (trainer)."""

    background_niceness: Niceness = option(
        10,
        "niceness (0-19) of the work beside serving: a new version's load, compiled build and check "
        "(predictor), the compiled build ahead of the predictors (trainer); 10: the serving loop wins the "
        "cores; 0: as high as serving (cores to spare, or a build that must not wait)",
        env="BACKGROUND_NICENESS",
    )


# The first model gets a thorough search on every core; a retrain a shorter one on one thread, so
# that the predictor keeps the other core while it runs.
INITIAL_TUNING = TuningSettings(max_evals=50, threads=0)
RETRAIN_TUNING = TuningSettings(max_evals=10, threads=1)


@dataclass(frozen=True)
class JudgementSettings:
    """How a challenger is judged on paired live labels (train/rollout/sequential.py): by the trainer
    during a rollout, and by backtest.py on the observations log."""

    rule: RolloutJudgement = option(
        "sequential",
        "sequential: decide at the first labelled pair where a confidence sequence on the log-loss difference "
        "settles, and by the fixed rule at --shadow-min-labelled pairs if it has not; fixed: the fixed rule only "
        "(DeLong's interval on the AUC difference after --shadow-min-labelled pairs)",
        flag="--shadow-judgement",
    )
    min_labelled: PositiveInt = option(
        500,
        "paired labelled requests the fixed rule judges (with the sequential rule: its budget, the most a trial takes)",
        flag="--shadow-min-labelled",
    )
    margin: float = option(
        0.005, "largest live-AUC loss (95% interval) that still promotes a challenger", flag="--shadow-margin"
    )
    log_loss_margin: float = option(
        0.01,
        "sequential rule: largest live log-loss loss per request (challenger minus champion, 95% confidence "
        "sequence) that still promotes a challenger; beyond it with confidence, rejected early",
        flag="--shadow-log-loss-margin",
    )
    max_error_rate: Fraction = option(
        0.05,
        "share of labelled requests the challenger fails to score (errors, requests its form refuses) beyond "
        "which it is rejected at once (1: no limit)",
        flag="--shadow-max-error-rate",
    )
    max_scoring_us: float = option(
        5000.0,
        "the challenger's mean scoring time per request (microseconds, LightGBM) beyond which it is rejected "
        "at once (0: no limit)",
        flag="--shadow-max-scoring-us",
    )
    # The sequential test's validity is asymptotic (it estimates the variance): no decision before.
    sequential_burn_in: int = 100
    guardrail_min_requests: int = 50  # asked at least this many before a guardrail may reject
    confidence: float = 0.95


@dataclass(frozen=True)
class RolloutSettings:
    """How a version that passes the holdout gate reaches traffic (docs/rollouts.md)."""

    mode: RolloutMode = option(
        "direct",
        "direct: a version that passes the holdout gate serves at once; shadow: it is first scored beside "
        "the champion and judged on live labels; canary: as shadow, and it answers a share of requests",
        flag="--rollout",
    )
    canary_fraction: Fraction = option(0.1, "share of requests a canary answers")
    judgement: JudgementSettings = JudgementSettings()
    judge_interval_s: float = 2.0  # how often the trainer reads the tally


# --- The scripts ---


@dataclass(frozen=True)
class InitializeSettings:
    common: CommonSettings = CommonSettings()
    tuning: TuningSettings = INITIAL_TUNING
    data: Path | None = option(
        None,
        "a CSV file of your own, with a header: its spec is inferred, shown, then trained on (docs/your-own-data.md)",
    )
    label: str | None = option(None, "with --data: the label column")
    positive: str | None = option(None, "with --data: the label's positive value (not needed for 0/1 or true/false)")
    ignore: str = option("", "with --data: comma-separated columns to leave out")
    spec: Path | None = option(None, "a dataset spec (TOML) to train on, e.g. an edited draft (default: Adult's)")
    write_spec: Path | None = option(None, "with --data: save the inferred draft spec here for editing, and stop")
    print_json_schema: bool = option(False, "print the JSON Schema (draft 2020-12) of the spec's requests, and stop")
    download: bool = option(False, "fetch the data from the spec's URLs instead of the bundled copy (digests checked)")
    experiment: str = option(DEFAULT_EXPERIMENT, "MLflow experiment")
    registered_model: str = option(DEFAULT_REGISTERED_MODEL, "MLflow registered model")
    keep_versions: int = option(DEFAULT_KEEP_VERSIONS, "model versions kept in the store")
    force: bool = option(False, "train a new version even if one already serves (another spec starts a new lineage)")
    schema_format: SchemaFormat = option(
        "json", "with --schema-registry-url: register the requests' and answers' schemas as JSON Schema or Avro"
    )

    def __post_init__(self) -> None:
        if self.data is not None and self.spec is not None:
            raise SettingsError("give --data (a CSV to infer a spec from) or --spec (a spec file), not both")
        if self.data is not None and not self.label:
            raise SettingsError("--data needs --label, the column to predict")
        if self.data is None and (self.label or self.positive or self.ignore or self.write_spec):
            raise SettingsError("--label, --positive, --ignore and --write-spec go with --data")

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.ignore.split(",") if name.strip())


@dataclass(frozen=True)
class PredictorSettings:
    common: CommonSettings = CommonSettings()
    background: BackgroundSettings = BackgroundSettings()
    group_id: str = option("predictor", "consumer group of the predictors")
    # The retrain triggers (predict/retrain_triggers.py, docs/rollouts.md): each on its own, any
    # combination; 0 turns one off.
    retrain_every: NonNegativeInt = option(
        25, "count trigger: labelled observations between retrain requests (counted over all predictors; 0: off)"
    )
    retrain_on_drift: NonNegativeFloat = option(
        0.0,
        "drift trigger: retrain when the PSI of an input field, or of the model's scores, over the last "
        "--retrain-window requests against the serving version's reference rows is above this (0: off; 0.2 is "
        "a shift worth acting on)",
    )
    retrain_on_quality_drop: NonNegativeFloat = option(
        0.0,
        "quality trigger: retrain when the live log loss per request on the last --retrain-window labelled "
        "requests is worse than the serving version's holdout log loss by more than this, with 95% "
        "confidence (0: off)",
    )
    retrain_interval_s: NonNegativeFloat = option(
        0.0,
        "time trigger: seconds between retrain requests, each sent if --retrain-min-new observations arrived since "
        "the serving version's training (0: off)",
    )
    retrain_min_new: NonNegativeInt = option(
        100, "time trigger: new labelled observations (since the serving version's training) needed to retrain"
    )
    retrain_window: PositiveInt = option(
        1000, "drift and quality triggers: requests (labelled ones, for quality) each judgement looks at"
    )
    retrain_cooldown_s: NonNegativeFloat = option(
        600.0, "drift and quality triggers: least seconds between two retrain requests of the same reason"
    )
    max_batch: PositiveInt = option(500, "most records scored per poll")
    poll_timeout_ms: PositiveInt = option(100, "longest wait of one poll for requests")
    # Sent but not yet acknowledged: beyond either bound the loop waits for the broker.
    max_in_flight_records: PositiveInt = option(
        5000, "records polled but not yet acknowledged, at most (then the loop waits for the broker)"
    )
    max_in_flight_bytes: PositiveInt = option(
        16 * 1024 * 1024, "bytes of requests polled but not yet acknowledged, at most"
    )
    # A commit is a broker round trip; a crash replays at most this much more.
    commit_interval_ms: PositiveInt = option(
        100, "acknowledged offsets are committed at most this often (always before a rebalance or a stop)"
    )
    scorer: ScorerChoice = option(
        "auto",
        "auto: LightGBM at once, then the compiled form once built and checked; compiled: the same, "
        "refusals logged as errors; lightgbm: never compile",
    )
    explain_top: PositiveInt = option(5, 'feature contributions in the answer to a request with "explain": true')
    max_message_bytes: PositiveInt = option(
        64 * 1024, "larger requests are answered with error too_large, before they are parsed"
    )
    metrics_port: int = option(8000, "Prometheus /metrics (0: off)")
    live_window: PositiveInt = option(1000, "labelled requests per version in live quality")
    report_interval_s: float = option(
        10.0, "seconds between live-quality reports (Prometheus, MLflow)", flag="--report-interval"
    )
    experiment: str = option(DEFAULT_EXPERIMENT, "MLflow experiment of the serving runs")
    model_source: ModelSource = option(
        "local", "where versions come from: the --model-store folder, or the MLflow registry (cached in it)"
    )
    registered_model: str = option(DEFAULT_REGISTERED_MODEL, "MLflow registered model")
    processing_guarantee: ProcessingGuarantee = option(
        "at-least-once",
        "exactly-once: each batch's answers, dead letters, observations, retrain requests and consumer "
        "offsets are one Kafka transaction",
    )
    instance_slot: int = option(
        0,
        "exactly-once: this predictor's slot (0, 1, ...); its transactional id is <group>-<slot>, so a "
        "restarted instance fences the zombie of the one before it",
    )

    @property
    def transactional_id(self) -> str | None:
        """One id per instance slot, stable across restarts: a restart fences its zombie."""
        if self.processing_guarantee != "exactly-once":
            return None
        return f"{self.group_id}-{self.instance_slot}"


@dataclass(frozen=True)
class TrainerSettings:
    common: CommonSettings = CommonSettings()
    tuning: TuningSettings = RETRAIN_TUNING
    rollout: RolloutSettings = RolloutSettings()
    background: BackgroundSettings = BackgroundSettings()
    group_id: str = option("trainer", "consumer group of the trainer")
    promotion_tolerance: float = option(0.005, "largest holdout-AUC drop that still promotes a new model")
    max_observations: NonNegativeInt = option(
        1_000_000, "newest labelled observations used per retrain (bounds memory; 0: the data file only)"
    )
    metrics_port: int = option(8001, "Prometheus /metrics (0: off)")
    experiment: str = option(DEFAULT_EXPERIMENT, "MLflow experiment")
    registered_model: str = option(DEFAULT_REGISTERED_MODEL, "MLflow registered model")
    keep_versions: int = option(DEFAULT_KEEP_VERSIONS, "model versions kept in the store")


@dataclass(frozen=True)
class SampleAppSettings:
    common: CommonSettings = CommonSettings()
    data: Path | None = option(
        None, "a CSV file whose rows fit the serving spec, to stream instead of the spec's own rows (header needed)"
    )
    n: int = option(200, "users to send")
    rate: float = option(10.0, "requests per second (0: as fast as possible)")
    timeout_s: float = option(60.0, "seconds to wait for outstanding answers after the last request", flag="--timeout")
    start: int = option(0, "first row to send (Adult: of the streamed half of adult.test)")
    summary_json: Path | None = option(None, "also write the summary to this file")
    quiet: bool = option(False, "print only the summary")
    explain: bool = option(False, "ask why, and print the reasons for each 'send offer' answer")


@dataclass(frozen=True)
class RollbackSettings:
    common: CommonSettings = CommonSettings()
    version: int | None = option(
        None, "model version to serve (see models/ or MLflow); none: end the rollout", positional=True
    )
    experiment: str = option(DEFAULT_EXPERIMENT, "MLflow experiment where the rollback is recorded")
    registered_model: str = option(DEFAULT_REGISTERED_MODEL, "MLflow registered model")


@dataclass(frozen=True)
class PromoteSettings:
    common: CommonSettings = CommonSettings()
    registered_model: str = option(DEFAULT_REGISTERED_MODEL, "MLflow registered model")
    experiment: str = option(DEFAULT_EXPERIMENT, "MLflow experiment")


@dataclass(frozen=True)
class BacktestSettings:
    common: CommonSettings = CommonSettings()
    judgement: JudgementSettings = JudgementSettings()
    version: int | None = option(None, "the version to judge, as a challenger (see models/ or MLflow)")
    against: int | None = option(None, "the version it is compared with, as the champion (default: the current one)")
    from_offset: NonNegativeInt = option(0, "first offset of the observations log read")
    to_offset: int | None = option(None, "offset of the observations log where reading stops (default: its end)")
    summary_json: Path | None = option(None, "also write the comparison to this file (JSON)")

    def __post_init__(self) -> None:
        if self.version is None:
            raise SettingsError("give --version, the model version to backtest")
        if self.version == self.against:
            raise SettingsError(f"--version and --against are both {self.version}: give two versions")
        if self.to_offset is not None and self.to_offset <= self.from_offset:
            raise SettingsError(f"--to-offset {self.to_offset} must be after --from-offset {self.from_offset}")


@dataclass(frozen=True)
class AclSettings:
    common: CommonSettings = CommonSettings()
    predictor_group: str = option(PredictorSettings.group_id, "consumer group of the predictors")
    trainer_group: str = option(TrainerSettings.group_id, "consumer group of the trainer")


# Every entry script and the settings it takes: the parsers and the docs' tables come from here.
SCRIPTS: dict[str, type] = {
    "initialize.py": InitializeSettings,
    "predictor.py": PredictorSettings,
    "trainer.py": TrainerSettings,
    "sample_app.py": SampleAppSettings,
    "promote.py": PromoteSettings,
    "rollback.py": RollbackSettings,
    "backtest.py": BacktestSettings,
    "setup_acls.py": AclSettings,
}
