"""Least privilege: what each role may do on the broker, as data (the README's ACL table, the set-up
command and the tests all read it from here).

Roles are principals `User:<role>`: the company's app, the predictors, the trainer (rollback.py and
setup run as `admin`, a super user). Model events (new versions, rollbacks) must be on their own
topic (`--model-events-topic`) for the broker to tell who may announce a model.
"""

from __future__ import annotations

from typing import Literal

from utils.kafka.interface import AclRule
from utils.settings import Topics

ROLES = ("app", "predictor", "trainer")
Operation = Literal["read", "write", "describe", "create"]


def acl_plan(topics: Topics, predictor_group: str, trainer_group: str) -> list[AclRule]:
    """The ALLOW rules of every role; anything else is denied."""
    if topics.model_events == topics.retrain:
        raise ValueError("with ACLs, model events need their own topic: set --model-events-topic")

    def topic(role: str, name: str, *operations: Operation) -> list[AclRule]:
        return [AclRule(f"User:{role}", "topic", name, operation) for operation in ("describe", *operations)]

    def group(role: str, name: str) -> list[AclRule]:
        return [AclRule(f"User:{role}", "group", name, "read")]

    return [
        # The app writes requests and reads answers.
        *topic("app", topics.app_messages, "write"),
        *topic("app", topics.predictions, "read"),
        # Predictors read requests (in their group) and model events; write answers, dead letters,
        # observations, and retrain requests (and refusals of a bad model) on the retrain topic.
        *topic("predictor", topics.app_messages, "read"),
        *group("predictor", predictor_group),
        *topic("predictor", topics.model_events, "read"),
        *topic("predictor", topics.predictions, "write"),
        *topic("predictor", topics.dead_letter, "write"),
        *topic("predictor", topics.observations, "write"),
        *topic("predictor", topics.retrain, "write"),
        # The trainer reads retrain requests (in its group) and observations (retraining data, and a
        # rollout's paired tally); announces versions and reads back what it announced (each once).
        *topic("trainer", topics.retrain, "read"),
        *group("trainer", trainer_group),
        *topic("trainer", topics.observations, "read"),
        *topic("trainer", topics.model_events, "write", "read"),
    ]
