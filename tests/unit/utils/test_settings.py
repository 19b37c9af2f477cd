import argparse
import sys

import pytest

from utils.kafka.kafka_python import client_config
from utils.settings import (
    RETRAIN_TUNING,
    KafkaSettings,
    add_common_arguments,
    add_tuning_arguments,
    common_from_args,
    tuning_from_args,
)


def parse(argv, env):
    parser = argparse.ArgumentParser()
    add_common_arguments(parser, env)
    return common_from_args(parser.parse_args(argv))


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        ([], {}, "localhost:9092"),
        ([], {"KAFKA_BOOTSTRAP_SERVERS": "b1:9092,b2:9092"}, "b1:9092,b2:9092"),
        (["--bootstrap-servers", "flag:1"], {"KAFKA_BOOTSTRAP_SERVERS": "env:1"}, "flag:1"),
    ],
)
def test_flags_override_environment_override_defaults(argv, env, expected):
    assert parse(argv, env).kafka.bootstrap_servers == expected


def test_topic_prefix_from_environment():
    topics = parse([], {"PIPELINE_TOPIC_PREFIX": "t1-"}).topics
    assert topics.app_messages == "t1-app_messages"
    assert topics.retrain == "t1-retrain_topic"


def test_password_never_in_repr():
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="s3cret"
    )
    assert "s3cret" not in repr(settings)
    assert client_config(settings)["sasl_plain_password"] == "s3cret"


def test_tracking_uri_default_is_a_local_sqlite_file():
    assert parse([], {}).tracking_uri.startswith("sqlite:///")


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
    assert parse(argv, env).topics.model_events == expected


def parse_tuning(argv, env):
    parser = argparse.ArgumentParser()
    add_tuning_arguments(parser, RETRAIN_TUNING, env)
    return tuning_from_args(parser.parse_args(argv), parser)


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
    tuning = parse_tuning(argv, env)
    assert (tuning.spark.master, tuning.spark.parallelism) == (master, parallelism)
    assert (tuning.max_evals, tuning.threads) == (RETRAIN_TUNING.max_evals, RETRAIN_TUNING.threads)


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        ([], {}, sys.executable),
        ([], {"PYSPARK_PYTHON": "/opt/env/bin/python"}, "/opt/env/bin/python"),
        (["--pyspark-python", "/flag/python"], {"PYSPARK_PYTHON": "/opt/env/bin/python"}, "/flag/python"),
    ],
)
def test_executor_python_from_flag_or_environment(argv, env, expected):
    assert parse_tuning(argv, env).spark.python == expected


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
            parse_tuning(argv, env)
        assert stopped.value.code == 2
        assert "--spark-master runs hyperopt trials only" in capsys.readouterr().err
    else:
        assert parse_tuning(argv, env).hyper == argv[1]


def test_negative_parallelism_is_refused():
    with pytest.raises(SystemExit):
        parse_tuning(["--parallelism", "-1"], {})
