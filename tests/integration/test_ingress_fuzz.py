"""Schema-driven fuzzing of the ingress against its published OpenAPI document (schemathesis):
valid and invalid requests alike never get a 5xx, and an event is accepted only if the fleet can
handle it: the body's schema is a oneOf over the event types, each with its data's schema, so the
generated events reach the handlers' models."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from handlers.contracts import check_event
from handlers.envelope import parse_event
from handlers.registry import Registry
from tests.integration.conftest import FleetUnderTest
from tests.integration.test_ingress_events import api_key
from tests.support.ingress import start_web

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

EXAMPLES = 25  # per operation and mode: 4 operations x 2 modes x 25, well under a minute


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


def _sent_events(case: Any) -> list[Any]:
    body = case.body
    if isinstance(body, bytes | str):
        body = json.loads(body)
    return body if isinstance(body, list) else [body]


def test_no_input_gets_a_5xx_and_only_handleable_events_are_accepted(
    fleet_under_test: FleetUnderTest,
) -> None:
    # schemathesis's own pytest plugin does not run on this pytest; its strategies are driven by
    # hypothesis directly, one operation and generation mode at a time.
    _, base = start_web(fleet_under_test)
    auth = {"Authorization": f"Bearer {api_key(fleet_under_test, '*')}"}
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    registry = Registry()
    known = {route.type for route in registry.routes()}
    accepted: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/events", "/graph/notifications", "/webhooks/{source}"}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def exchange(case: Any) -> None:
                # The handshake answers whatever body comes with a validationToken: Graph's has none.
                handshake = case.path.startswith("/graph/")
                response = case.call_and_validate(
                    headers=auth, excluded_checks=[checks.negative_data_rejection] if handshake else []
                )
                assert response.status_code < 500, (case.method, case.path, case.body, response.text)
                if case.path == "/events" and response.status_code == 202:
                    for raw in _sent_events(case):
                        event = parse_event(raw)  # what was accepted is a valid envelope...
                        assert event.type in known  # ...of a type some handler takes...
                        check_event(registry.route_for(event.type), event)  # ...with data it takes
                        accepted.append(event.id)

            exchange()
    assert accepted, "no valid event was generated: the fuzzing proved only the refusals"
