import pytest

from utils.kafka.topics import Replication, replication_for, topic_specs, under_replicated
from utils.settings import KafkaSettings, SettingsError, Topics


@pytest.mark.parametrize(
    "factor, min_insync, brokers, expected",
    [
        (0, 0, 1, Replication(None, None)),  # one broker: its defaults
        (0, 0, 2, Replication(None, None)),
        (0, 0, 3, Replication(3, 2)),  # a cluster: survives one failure
        (0, 0, 5, Replication(3, 2)),
        (2, 0, 3, Replication(2, 2)),  # an explicit factor under the default min ISR: all replicas
        (1, 0, 3, Replication(1, 1)),
        (5, 3, 5, Replication(5, 3)),
        (0, 1, 3, Replication(3, 1)),
        (0, 2, 1, Replication(None, 2)),  # asked for: the broker refuses it if it cannot hold it
    ],
)
def test_replication_follows_the_settings_then_the_cluster(factor, min_insync, brokers, expected):
    settings = KafkaSettings(replication_factor=factor, min_insync_replicas=min_insync)
    assert replication_for(settings, brokers) == expected


def test_a_min_insync_above_the_factor_is_refused():
    with pytest.raises(SettingsError, match="min-insync-replicas"):
        KafkaSettings(replication_factor=2, min_insync_replicas=3)


@pytest.mark.parametrize(
    "factors, wanted, expected",
    [
        ({"a": 1, "b": 3}, Replication(3, 2), {"a": 1}),
        ({"a": 3}, Replication(3, 2), {}),
        ({"a": 1}, Replication(None, None), {}),  # no wish: nothing is short
        ({"b": 2, "a": 1}, Replication(3, 2), {"a": 1, "b": 2}),
    ],
)
def test_under_replicated_topics(factors, wanted, expected):
    assert under_replicated(factors, wanted) == expected


def test_topic_specs_carry_the_replication_and_keep_observations_forever():
    topics = Topics()
    specs = {spec.name: spec for spec in topic_specs(topics, Replication(3, 2))}
    assert {spec.replication_factor for spec in specs.values()} == {3}
    assert {spec.configs["min.insync.replicas"] for spec in specs.values()} == {"2"}
    assert specs[topics.observations].configs["retention.ms"] == "-1"
    plain = topic_specs(topics)
    assert all(spec.replication_factor is None and "min.insync.replicas" not in spec.configs for spec in plain)
