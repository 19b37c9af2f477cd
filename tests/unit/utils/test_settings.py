"""Settings from flags, the environment and the declared defaults (utils/settings.py, utils/cli.py)."""

import sys

import pytest

from utils.cli import settings_from
from utils.kafka.kafka_python import client_config
from utils.settings import (
    RETRAIN_TUNING,
    SCRIPTS,
    CommonSettings,
    KafkaSettings,
    PredictorSettings,
    SettingsError,
    TrainerSettings,
    TuningSettings,
)


def common(argv, env):
    return settings_from(CommonSettings, argv, env)


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        ([], {}, "localhost:9092"),
        ([], {"KAFKA_BOOTSTRAP_SERVERS": "b1:9092,b2:9092"}, "b1:9092,b2:9092"),
        (["--bootstrap-servers", "flag:1"], {"KAFKA_BOOTSTRAP_SERVERS": "env:1"}, "flag:1"),
    ],
)
def test_flags_override_environment_override_defaults(argv, env, expected):
    assert common(argv, env).kafka.bootstrap_servers == expected


def test_topic_prefix_from_environment():
    topics = common([], {"PIPELINE_TOPIC_PREFIX": "t1-"}).topics
    assert topics.app_messages == "t1-app_messages"
    assert topics.retrain == "t1-retrain_topic"


def test_a_topic_given_as_a_flag_is_not_prefixed():
    topics = common(["--app-topic", "mine"], {"PIPELINE_TOPIC_PREFIX": "t1-"}).topics
    assert (topics.app_messages, topics.predictions) == ("mine", "t1-predictions")


def test_password_never_in_repr():
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="s3cret"
    )
    assert "s3cret" not in repr(settings)
    assert client_config(settings)["sasl_plain_password"] == "s3cret"


def test_tracking_uri_default_is_a_local_sqlite_file():
    assert common([], {}).tracking_uri.startswith("sqlite:///")


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        ([], {}, "retrain_topic"),
        ([], {"PIPELINE_TOPIC_PREFIX": "t1-"}, "t1-retrain_topic"),
        ([], {"PIPELINE_MODEL_EVENTS_TOPIC": "model_events"}, "model_events"),
        ([], {"PIPELINE_TOPIC_PREFIX": "t1-", "PIPELINE_MODEL_EVENTS_TOPIC": "model_events"}, "t1-model_events"),
        (["--model-events-topic", "events"], {"PIPELINE_MODEL_EVENTS_TOPIC": "model_events"}, "events"),
        (["--retrain-topic", "r"], {}, "r"),
    ],
)
def test_model_events_share_the_retrain_topic_unless_told(argv, env, expected):
    assert common(argv, env).topics.model_events == expected


def tuning(argv, env):
    return settings_from(TrainerSettings, argv, env).tuning


@pytest.mark.parametrize(
    "argv, env, master, parallelism",
    [
        ([], {}, None, 0),
        ([], {"SPARK_MASTER": ""}, None, 0),
        ([], {"SPARK_MASTER": "local[2]"}, "local[2]", 0),
        (["--spark-master", "spark://h:7077", "--parallelism", "8"], {"SPARK_MASTER": "local[2]"}, "spark://h:7077", 8),
    ],
)
def test_spark_master_from_flag_or_environment(argv, env, master, parallelism):
    settings = tuning(argv, env)
    assert (settings.spark.master, settings.spark.parallelism) == (master, parallelism)
    assert (settings.max_evals, settings.threads) == (RETRAIN_TUNING.max_evals, RETRAIN_TUNING.threads)


def test_each_script_has_its_own_tuning_defaults():
    assert settings_from(SCRIPTS["initialize.py"], [], {}).tuning.max_evals == 50
    assert tuning([], {}).max_evals == 10
    assert tuning(["--max-evals", "3"], {}).threads == RETRAIN_TUNING.threads


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        ([], {}, sys.executable),
        ([], {"PYSPARK_PYTHON": "/opt/env/bin/python"}, "/opt/env/bin/python"),
        (["--pyspark-python", "/flag/python"], {"PYSPARK_PYTHON": "/opt/env/bin/python"}, "/flag/python"),
    ],
)
def test_executor_python_from_flag_or_environment(argv, env, expected):
    assert tuning(argv, env).spark.python == expected


@pytest.mark.parametrize(
    "argv, env, refused",
    [
        (["--hyper", "skopt", "--spark-master", "local[2]"], {}, True),
        (["--hyper", "hyperparameterhunter"], {"SPARK_MASTER": "local[2]"}, True),
        (["--hyper", "skopt"], {}, False),
        (["--hyper", "hyperopt", "--spark-master", "local[2]"], {}, False),
    ],
)
def test_only_hyperopt_is_accepted_with_a_spark_master(argv, env, refused, capsys):
    if refused:
        with pytest.raises(SystemExit) as stopped:
            tuning(argv, env)
        assert stopped.value.code == 2
        assert "--spark-master runs hyperopt trials only" in capsys.readouterr().err
    else:
        assert tuning(argv, env).hyper == argv[1]


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(SettingsError):
        TuningSettings(hyper="skopt", spark=TuningSettings().spark.__class__(master="local[2]"))


# A bad value is refused at start, exit 2, in one line naming the flag or the variable.
@pytest.mark.parametrize(
    "argv, env, named",
    [
        ([], {"KAFKA_CLIENT": "librdkafka"}, "KAFKA_CLIENT='librdkafka' is not one of kafka-python, confluent"),
        ([], {"LOG_FORMAT": "JSON"}, "LOG_FORMAT='JSON' is not one of text, json"),
        ([], {"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is not one of DEBUG, INFO, WARNING, ERROR"),
        ([], {"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS'"),
        (["--kafka-client", "librdkafka"], {}, "argument --kafka-client: 'librdkafka' is not one of"),
        (["--scorer", "fast"], {}, "argument --scorer"),
        (["--retrain-every", "-1"], {}, "must be >= 0, got -1"),
        (["--retrain-on-drift", "-0.1"], {}, "must be >= 0, got -0.1"),
        (["--max-batch", "0"], {}, "must be >= 1, got 0"),
        (["--retrain-every", "many"], {}, "argument --retrain-every"),
        (["--processing-guarantee", "exactly_once"], {}, "at-least-once, exactly-once"),
        (["--max-batch", "-5"], {}, "argument --max-batch"),
        (["--background-niceness", "20"], {}, "must be a niceness from 0 to 19, got 20"),
        ([], {"BACKGROUND_NICENESS": "-1"}, "must be a niceness from 0 to 19, got -1"),
        (["--schema-registry-timeout-s", "0"], {}, "must be > 0, got 0.0"),
        ([], {"SCHEMA_REGISTRY_TIMEOUT_S": "nan"}, "must be > 0, got nan"),
    ],
)
def test_a_bad_value_is_refused_in_one_line(argv, env, named, capsys):
    with pytest.raises(SystemExit) as stopped:
        settings_from(PredictorSettings, argv, env, prog="predictor.py")
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert named in error
    assert error.count("\n") == 1


@pytest.mark.parametrize("env, expected", [({"LOG_LEVEL": "debug"}, "DEBUG"), ({}, "INFO")])
def test_log_levels_are_read_in_any_case(env, expected):
    assert common([], env).log_level == expected


def test_negative_parallelism_is_refused():
    with pytest.raises(SystemExit):
        tuning(["--parallelism", "-1"], {})


REQUIRED_FLAGS = {"backtest.py": ["--version", "2"]}  # what a script cannot run without


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_script_parses_with_no_flags_but_its_required_ones(script):
    settings = settings_from(SCRIPTS[script], REQUIRED_FLAGS.get(script, []), {})
    assert settings.common.kafka.bootstrap_servers == "localhost:9092"


@pytest.mark.parametrize(
    "argv",
    [[], ["--version", "2", "--against", "2"], ["--version", "2", "--from-offset", "9", "--to-offset", "9"]],
)
def test_backtest_refuses_flags_that_cannot_work(argv):
    with pytest.raises(SystemExit) as exit_:
        settings_from(SCRIPTS["backtest.py"], argv, {})
    assert exit_.value.code == 2


def test_backtest_defaults_to_the_current_version_and_the_whole_log():
    settings = settings_from(SCRIPTS["backtest.py"], ["--version", "3"], {})
    assert (settings.version, settings.against, settings.from_offset, settings.to_offset) == (3, None, 0, None)
    assert settings.judgement == SCRIPTS["trainer.py"]().rollout.judgement, "the trainer's judgement by default"


@pytest.mark.parametrize("argv, expected", [([], None), (["3"], 3), (["--tracking-uri", "http://h:5000", "7"], 7)])
def test_rollback_takes_an_optional_version(argv, expected):
    assert settings_from(SCRIPTS["rollback.py"], argv, {}).version == expected
