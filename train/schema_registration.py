"""A version's schemas in the schema registry (docs/schema-registry.md), registered before it is
trained: the spec's request schema under `<app topic>-value` and the answer schema under
`<predictions topic>-value`, each subject held to BACKWARD compatibility, so a spec whose requests
the serving schema's producers could not send (a field retyped, a new required one) is refused,
and the version is never published."""

from __future__ import annotations

import logging
import threading
import time

from utils import metrics
from utils.model_store import SchemaIds
from utils.schema_registry.client import RegistryClient, RegistryUnavailable
from utils.schema_registry.schemas import answer_schema, request_schema, subjects
from utils.settings import SchemaFormat, Topics
from utils.shutdown import StopRequested
from utils.spec import DatasetSpec

log = logging.getLogger(__name__)

COMPATIBILITY = "BACKWARD"
RETRY_S = 2.0


def register_schemas(
    client: RegistryClient, spec: DatasetSpec, schema_format: SchemaFormat, topics: Topics
) -> SchemaIds:
    """Raises SchemaRefused (with the registry's reason) or RegistryUnavailable."""
    request_subject, answer_subject = subjects(topics)
    for subject in (request_subject, answer_subject):  # first: the rule applies to this registration too
        client.set_compatibility(subject, COMPATIBILITY)
    request_id = client.register(request_subject, schema_format, request_schema(spec, schema_format))
    answer_id = client.register(answer_subject, schema_format, answer_schema(schema_format))
    ids = SchemaIds(schema_format, request_subject, request_id, answer_subject, answer_id)
    log.info(
        "schemas registered format=%s request_schema=%s:%s answer_schema=%s:%s",
        schema_format,
        request_subject,
        request_id,
        answer_subject,
        answer_id,
    )
    return ids


def register_when_up(
    client: RegistryClient, spec: DatasetSpec, schema_format: SchemaFormat, topics: Topics, stop: threading.Event
) -> SchemaIds:
    """`register_schemas`, waiting out a registry outage (the trainer's retrains wait; they never
    publish a version whose schemas are not registered)."""
    down_since = None
    while True:
        try:
            ids = register_schemas(client, spec, schema_format, topics)
        except RegistryUnavailable as error:
            if down_since is None:
                down_since = time.monotonic()
                metrics.SCHEMA_REGISTRY_REACHABLE.set(0)
                log.warning("schema registry unreachable, the retrain waits error=%s", error)
            if stop.wait(RETRY_S):
                raise StopRequested("stopped while waiting for the schema registry") from error
            continue
        metrics.SCHEMA_REGISTRY_REACHABLE.set(1)
        return ids
