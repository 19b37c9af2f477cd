import pytest

from utils.kafka.acls import acl_plan
from utils.settings import Topics

TOPICS = Topics(model_events="model_events")


def allowed(role: str) -> set[tuple[str, str, str]]:
    return {
        (rule.resource, rule.name, rule.operation)
        for rule in acl_plan(TOPICS, "predictors", "trainers")
        if rule.principal == f"User:{role}"
    }


@pytest.mark.parametrize(
    "role, resource, name, operation, expected",
    [
        ("app", "topic", "app_messages", "write", True),
        ("app", "topic", "predictions", "read", True),
        ("app", "topic", "app_messages", "read", False),
        ("app", "topic", "model_events", "write", False),
        ("app", "topic", "observations", "read", False),
        ("app", "topic", "retrain_topic", "write", False),
        ("predictor", "topic", "app_messages", "read", True),
        ("predictor", "group", "predictors", "read", True),
        ("predictor", "topic", "model_events", "read", True),
        ("predictor", "topic", "model_events", "write", False),
        ("predictor", "topic", "observations", "write", True),
        ("predictor", "topic", "observations", "read", False),
        ("predictor", "topic", "retrain_topic", "write", True),
        ("trainer", "topic", "retrain_topic", "read", True),
        ("trainer", "group", "trainers", "read", True),
        ("trainer", "topic", "observations", "read", True),
        ("trainer", "topic", "model_events", "write", True),
        ("trainer", "topic", "model_events", "read", True),  # reads back what it announced
        ("trainer", "topic", "predictions", "write", False),
        ("trainer", "topic", "app_messages", "read", False),
    ],
)
def test_each_role_gets_only_what_it_needs(role, resource, name, operation, expected):
    assert ((resource, name, operation) in allowed(role)) is expected


def test_no_role_may_create_topics_or_act_on_the_cluster():
    assert all(rule.operation != "create" for rule in acl_plan(TOPICS, "p", "t"))


def test_model_events_must_have_their_own_topic():
    with pytest.raises(ValueError, match="model-events-topic"):
        acl_plan(Topics(), "p", "t")
