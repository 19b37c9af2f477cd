"""Every default and every environment variable of the pipeline, read in one place.

Each service gets one frozen settings object. Flags override environment variables, which override
the defaults below. Nothing here touches the network or the disk.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_BOOTSTRAP_SERVERS = "localhost:9092"
DEFAULT_TRACKING_URI = f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
DEFAULT_ARTIFACT_ROOT = PROJECT_ROOT / "mlartifacts"
DEFAULT_MODEL_STORE = PROJECT_ROOT / "models"
DEFAULT_EXPERIMENT = "adult-income"
DEFAULT_REGISTERED_MODEL = "adult-income-lightgbm"
DEFAULT_KEEP_VERSIONS = 20
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the cluster. The password never appears in repr() or logs."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client: str = "kafka-python"  # or "confluent": librdkafka (utils/kafka/confluent.py)


@dataclass(frozen=True)
class Topics:
    """Topic names; tests give each run its own by passing a prefix.

    `retrain` carries what predictors say (retrain requests, refused models), `model_events` what
    the trainer and operators say (a new version, a rollback). By default both are one topic, as in
    the original; with ACLs they are two, so that the broker can enforce who may say what."""

    app_messages: str = "app_messages"
    predictions: str = "predictions"
    retrain: str = "retrain_topic"
    observations: str = "observations"
    dead_letter: str = "app_messages_dlq"
    model_events: str = "retrain_topic"

    def partitions(self) -> dict[str, int]:
        """Partition count of each topic. Observations and control messages stay on one partition
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
        return Topics(**{name: prefix + value for name, value in asdict(self).items()})


@dataclass(frozen=True)
class CommonSettings:
    kafka: KafkaSettings
    topics: Topics
    tracking_uri: str
    model_store: Path
    log_level: str
    log_format: str = "text"


@dataclass(frozen=True)
class SparkSettings:
    """Where Hyperopt's trials run (README: "Retraining on Spark"). No master: in this process."""

    master: str | None = None  # "local[2]", "spark://host:7077", "yarn", ...
    parallelism: int = 0  # trials at once; 0: the cluster's task slots
    python: str = sys.executable  # the interpreter executors start (same path on every worker)
    log_dir: Path = PROJECT_ROOT / "logs"  # Spark's own output: logs/spark-<service>.log


@dataclass(frozen=True)
class TuningSettings:
    hyper: str = "hyperopt"
    max_evals: int = 50
    threads: int = 0  # 0 lets LightGBM use every core (one per trial on Spark)
    seed: int = 42
    spark: SparkSettings = SparkSettings()


# The first model gets a thorough search on every core; a retrain a shorter one on one thread, so
# that the predictor keeps the other core while it runs.
INITIAL_TUNING = TuningSettings(max_evals=50, threads=0)
RETRAIN_TUNING = TuningSettings(max_evals=10, threads=1)


@dataclass(frozen=True)
class InitializeSettings:
    common: CommonSettings
    tuning: TuningSettings = INITIAL_TUNING
    download: bool = False
    experiment: str = DEFAULT_EXPERIMENT
    registered_model: str = DEFAULT_REGISTERED_MODEL
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    force: bool = False


@dataclass(frozen=True)
class PredictorSettings:
    common: CommonSettings
    group_id: str = "predictor"
    retrain_every: int = 25
    max_batch: int = 500
    poll_timeout_ms: int = 100
    # Sent but not yet acknowledged: beyond either bound the loop waits for the broker.
    max_in_flight_records: int = 5000
    max_in_flight_bytes: int = 16 * 1024 * 1024
    # Acknowledged offsets are committed at most this often (and always before a rebalance or a
    # stop): a commit is a broker round trip; a crash replays at most this much more.
    commit_interval_ms: int = 100
    scorer: str = "auto"  # or "lightgbm", "compiled" (utils/compiled.py)
    explain_top: int = 5  # contributions in an answer to a request with "explain": true
    max_message_bytes: int = 64 * 1024
    metrics_port: int = 8000  # 0: no /metrics endpoint
    live_window: int = 1000  # labelled requests per version in the live-quality window
    report_interval_s: float = 10.0  # how often live quality goes to Prometheus gauges and MLflow
    experiment: str = DEFAULT_EXPERIMENT
    model_source: str = "local"  # or "mlflow": fetch versions from the registry into model_store
    registered_model: str = DEFAULT_REGISTERED_MODEL
    processing_guarantee: str = "at-least-once"  # or "exactly-once": one Kafka transaction per batch
    instance_slot: int = 0  # exactly-once: transactional id <group_id>-<slot>

    @property
    def transactional_id(self) -> str | None:
        """One id per instance slot, stable across restarts: a restart fences its zombie."""
        if self.processing_guarantee != "exactly-once":
            return None
        return f"{self.group_id}-{self.instance_slot}"


@dataclass(frozen=True)
class RolloutSettings:
    """How a version that passes the holdout gate reaches traffic (README: "Rollouts")."""

    mode: str = "direct"  # or "shadow", "canary" (utils/messages.py)
    canary_fraction: float = 0.1  # share of requests the challenger answers in a canary rollout
    min_labelled: int = 500  # paired labelled requests before the challenger is judged
    margin: float = 0.005  # largest live-AUC loss, at 95% confidence, that still promotes
    judge_interval_s: float = 2.0  # how often the trainer reads the tally


@dataclass(frozen=True)
class TrainerSettings:
    common: CommonSettings
    tuning: TuningSettings = RETRAIN_TUNING
    rollout: RolloutSettings = RolloutSettings()
    group_id: str = "trainer"
    promotion_tolerance: float = 0.005
    max_observations: int = 1_000_000  # newest observations used per retrain (bounds memory)
    metrics_port: int = 8001
    experiment: str = DEFAULT_EXPERIMENT
    registered_model: str = DEFAULT_REGISTERED_MODEL
    keep_versions: int = DEFAULT_KEEP_VERSIONS


@dataclass(frozen=True)
class SampleAppSettings:
    common: CommonSettings
    n: int = 200
    rate: float = 10.0
    timeout_s: float = 60.0
    start: int = 0
    summary_json: Path | None = None
    quiet: bool = False
    explain: bool = False  # ask for explanations and print them for "send offer" answers


@dataclass(frozen=True)
class RollbackSettings:
    common: CommonSettings
    version: int | None  # None: end the rollout in progress, the champion serves on
    experiment: str = DEFAULT_EXPERIMENT  # where the rollback is recorded as a run
    registered_model: str = DEFAULT_REGISTERED_MODEL


@dataclass(frozen=True)
class PromoteSettings:
    common: CommonSettings
    registered_model: str = DEFAULT_REGISTERED_MODEL
    experiment: str = DEFAULT_EXPERIMENT


@dataclass(frozen=True)
class AclSettings:
    common: CommonSettings
    predictor_group: str
    trainer_group: str


def default(settings_class: type, name: str) -> Any:
    """The default of one field of a settings class: flags take their defaults from here, so each
    default is written once, in the dataclass."""
    for item in fields(settings_class):
        if item.name == name:
            if item.default is MISSING:
                raise KeyError(f"{settings_class.__name__}.{name} has no default")
            return item.default
    raise KeyError(f"{settings_class.__name__} has no field {name}")


def read_environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The only place that reads environment variables."""
    env = os.environ if env is None else env
    return {
        "bootstrap_servers": env.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP_SERVERS),
        "security_protocol": env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        "sasl_mechanism": env.get("KAFKA_SASL_MECHANISM"),
        "sasl_username": env.get("KAFKA_SASL_USERNAME"),
        "sasl_password": env.get("KAFKA_SASL_PASSWORD"),
        "ssl_cafile": env.get("KAFKA_SSL_CAFILE"),
        "ssl_certfile": env.get("KAFKA_SSL_CERTFILE"),
        "ssl_keyfile": env.get("KAFKA_SSL_KEYFILE"),
        "kafka_client": env.get("KAFKA_CLIENT", "kafka-python"),
        "tracking_uri": env.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
        "model_store": env.get("MODEL_STORE_DIR", str(DEFAULT_MODEL_STORE)),
        "log_level": env.get("LOG_LEVEL", "INFO").upper(),
        "log_format": env.get("LOG_FORMAT", "text"),
        "topic_prefix": env.get("PIPELINE_TOPIC_PREFIX", ""),
        "model_events_topic": env.get("PIPELINE_MODEL_EVENTS_TOPIC"),
        "spark_master": env.get("SPARK_MASTER") or None,
        "pyspark_python": env.get("PYSPARK_PYTHON") or sys.executable,
    }


def add_common_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] | None = None) -> None:
    """Flags every service accepts; their defaults come from the environment."""
    values = read_environment(env)
    topics = Topics().with_prefix(values["topic_prefix"] or "")
    group = parser.add_argument_group("Kafka")
    group.add_argument(
        "--bootstrap-servers",
        default=values["bootstrap_servers"],
        help="comma-separated brokers (env KAFKA_BOOTSTRAP_SERVERS)",
    )
    group.add_argument(
        "--security-protocol",
        default=values["security_protocol"],
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        help="(env KAFKA_SECURITY_PROTOCOL)",
    )
    group.add_argument(
        "--sasl-mechanism",
        default=values["sasl_mechanism"],
        help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env KAFKA_SASL_MECHANISM)",
    )
    group.add_argument("--sasl-username", default=values["sasl_username"], help="(env KAFKA_SASL_USERNAME)")
    group.add_argument(
        "--sasl-password", default=values["sasl_password"], help="prefer env KAFKA_SASL_PASSWORD: flags show up in `ps`"
    )
    group.add_argument("--ssl-cafile", default=values["ssl_cafile"], help="(env KAFKA_SSL_CAFILE)")
    group.add_argument("--ssl-certfile", default=values["ssl_certfile"], help="(env KAFKA_SSL_CERTFILE)")
    group.add_argument("--ssl-keyfile", default=values["ssl_keyfile"], help="(env KAFKA_SSL_KEYFILE)")
    group.add_argument(
        "--kafka-client",
        default=values["kafka_client"],
        choices=("kafka-python", "confluent"),
        help="Kafka client library for producing and consuming (env KAFKA_CLIENT)",
    )
    group.add_argument("--app-topic", default=topics.app_messages)
    group.add_argument("--predictions-topic", default=topics.predictions)
    group.add_argument("--retrain-topic", default=topics.retrain)
    group.add_argument("--observations-topic", default=topics.observations)
    group.add_argument("--dlq-topic", default=topics.dead_letter)
    group.add_argument(
        "--model-events-topic",
        default=(values["topic_prefix"] or "") + values["model_events_topic"] if values["model_events_topic"] else None,
        help="new versions and rollbacks (env PIPELINE_MODEL_EVENTS_TOPIC; default: the retrain topic)",
    )
    parser.add_argument(
        "--tracking-uri",
        default=values["tracking_uri"],
        help="MLflow tracking URI (env MLFLOW_TRACKING_URI; default: SQLite file mlflow.db)",
    )
    parser.add_argument(
        "--model-store",
        type=Path,
        default=Path(values["model_store"] or DEFAULT_MODEL_STORE),
        help="folder of model versions (env MODEL_STORE_DIR)",
    )
    parser.add_argument("--log-format", default=values["log_format"], choices=("text", "json"), help="(env LOG_FORMAT)")
    parser.add_argument(
        "--log-level", default=values["log_level"], type=str.upper, choices=LOG_LEVELS, help="(env LOG_LEVEL)"
    )


def add_tuning_arguments(
    parser: argparse.ArgumentParser, defaults: TuningSettings, env: Mapping[str, str] | None = None
) -> None:
    values = read_environment(env)
    parser.add_argument(
        "--hyper",
        default=defaults.hyper,
        choices=("hyperopt", "skopt", "hyperparameterhunter"),
        help="search library; hyperparameterhunter is an alias of skopt (see README)",
    )
    parser.add_argument("--max-evals", type=positive_int, default=defaults.max_evals, help="tuning trials")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="LightGBM threads (0: all cores)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the search and of LightGBM")
    spark = parser.add_argument_group("Spark")
    spark.add_argument(
        "--spark-master",
        default=values["spark_master"],
        help="run the trials on Spark (hyperopt.SparkTrials): local[2], spark://host:7077, yarn... "
        "(env SPARK_MASTER; default: in this process)",
    )
    spark.add_argument(
        "--parallelism",
        type=nonnegative_int,
        default=defaults.spark.parallelism,
        help="trials at once on Spark (0: the cluster's task slots)",
    )
    spark.add_argument(
        "--pyspark-python",
        default=values["pyspark_python"],
        help="Python interpreter of the executors (env PYSPARK_PYTHON; default: this one)",
    )


def add_registry_arguments(parser: argparse.ArgumentParser, experiment: bool = True) -> None:
    """Where a service finds or records models in MLflow."""
    if experiment:
        parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment")
    parser.add_argument("--registered-model", default=DEFAULT_REGISTERED_MODEL, help="MLflow registered model")


def add_rollout_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = RolloutSettings()
    group = parser.add_argument_group("Rollouts")
    group.add_argument(
        "--rollout",
        default=defaults.mode,
        choices=("direct", "shadow", "canary"),
        help="direct: a version that passes the holdout gate serves at once; shadow: it is first scored "
        "beside the champion and judged on live labels; canary: as shadow, and it answers a share of requests",
    )
    group.add_argument(
        "--canary-fraction", type=fraction, default=defaults.canary_fraction, help="share answered by a canary"
    )
    group.add_argument(
        "--shadow-min-labelled",
        type=positive_int,
        default=defaults.min_labelled,
        help="paired labelled requests before a challenger is judged",
    )
    group.add_argument(
        "--shadow-margin",
        type=float,
        default=defaults.margin,
        help="largest live-AUC loss (95%% interval) that still promotes a challenger",
    )


def rollout_from_args(args: argparse.Namespace) -> RolloutSettings:
    return RolloutSettings(
        mode=args.rollout,
        canary_fraction=args.canary_fraction,
        min_labelled=args.shadow_min_labelled,
        margin=args.shadow_margin,
    )


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def common_from_args(args: argparse.Namespace) -> CommonSettings:
    return CommonSettings(
        kafka=KafkaSettings(
            bootstrap_servers=args.bootstrap_servers,
            security_protocol=args.security_protocol,
            sasl_mechanism=args.sasl_mechanism,
            sasl_username=args.sasl_username,
            sasl_password=args.sasl_password,
            ssl_cafile=args.ssl_cafile,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
            client=args.kafka_client,
        ),
        topics=Topics(
            app_messages=args.app_topic,
            predictions=args.predictions_topic,
            retrain=args.retrain_topic,
            observations=args.observations_topic,
            dead_letter=args.dlq_topic,
            model_events=args.model_events_topic or args.retrain_topic,
        ),
        tracking_uri=args.tracking_uri,
        model_store=args.model_store.resolve(),
        log_level=args.log_level,
        log_format=args.log_format,
    )


def tuning_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TuningSettings:
    """The tuning settings of parsed flags; a usage error (exit 2) for a search Spark cannot run."""
    if args.spark_master and args.hyper != "hyperopt":
        parser.error(f"--spark-master runs hyperopt trials only, not --hyper {args.hyper}")
    return TuningSettings(
        hyper=args.hyper,
        max_evals=args.max_evals,
        threads=args.threads,
        seed=args.seed,
        spark=SparkSettings(master=args.spark_master, parallelism=args.parallelism, python=args.pyspark_python),
    )
