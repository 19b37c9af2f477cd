"""Run once, as admin, on a broker with an authorizer: create the pipeline's topics and give each
role (app, predictor, trainer) exactly the access it needs."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from utils.kafka.acls import ROLES, acl_plan
from utils.kafka.clients import create_admin
from utils.kafka.topics import wait_for_broker
from utils.service import run_service
from utils.settings import (
    AclSettings,
    PredictorSettings,
    TrainerSettings,
    add_common_arguments,
    common_from_args,
    default,
)

log = logging.getLogger("setup_acls")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    parser.add_argument(
        "--predictor-group", default=default(PredictorSettings, "group_id"), help="consumer group of the predictors"
    )
    parser.add_argument(
        "--trainer-group", default=default(TrainerSettings, "group_id"), help="consumer group of the trainer"
    )
    return parser


def parse_settings(argv: list[str]) -> AclSettings:
    args = build_parser().parse_args(argv)
    return AclSettings(common_from_args(args), args.predictor_group, args.trainer_group)


def run(settings: AclSettings, stop: threading.Event) -> int:
    """0 once the topics and the ACLs are in place; 2 if the topic layout cannot be secured."""
    topics = settings.common.topics
    try:
        rules = acl_plan(topics, settings.predictor_group, settings.trainer_group)
    except ValueError as error:
        log.error("%s", error)
        return 2
    wait_for_broker(settings.common.kafka, topics, stop)  # creates the topics
    admin = create_admin(settings.common.kafka, "setup-acls")
    try:
        admin.create_acls(rules)
    finally:
        admin.close()
    for role in ROLES:
        log.info("acls set role=%s rules=%s", role, sum(rule.principal == f"User:{role}" for rule in rules))
    return 0


if __name__ == "__main__":
    sys.exit(run_service("setup_acls", run, parse_settings(sys.argv[1:])))
