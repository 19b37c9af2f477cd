"""Run once, as admin, on a broker with an authorizer: create the pipeline's topics and give each
role (app, predictor, trainer) exactly the access it needs."""

from __future__ import annotations

import logging
import sys
import threading

from utils.cli import EXIT_CONFIGURATION, main
from utils.kafka.acls import ROLES, acl_plan
from utils.kafka.clients import create_admin
from utils.kafka.topics import wait_for_broker
from utils.settings import AclSettings

log = logging.getLogger("setup_acls")


def run(settings: AclSettings, stop: threading.Event) -> int:
    """0 once the topics and the ACLs are in place; 2 if the topic layout cannot be secured."""
    topics = settings.common.topics
    try:
        rules = acl_plan(topics, settings.predictor_group, settings.trainer_group)
    except ValueError as error:
        log.error("%s", error)
        return EXIT_CONFIGURATION
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
    sys.exit(main("setup_acls", AclSettings, run, __doc__))
