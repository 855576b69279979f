from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.effects import check_wiring
from handlers.demo.routes import ROUTES as DEMO_ROUTES
from handlers.errors import UnknownEventType
from handlers.registry import ROUTES, Registry
from infra.settings import Settings


def test_an_unknown_type_is_a_permanent_error_naming_it() -> None:
    with pytest.raises(UnknownEventType, match=r"'demo\.unheard_of'"):
        Registry().route_for("demo.unheard_of")


def test_task_names_are_explicit_unique_and_stable() -> None:
    tasks = [route.task for route in ROUTES.values()]
    assert len(set(tasks)) == len(tasks)
    assert all(task.startswith("fleet.") for task in tasks)


def test_wiring_is_checked_before_the_first_event() -> None:
    registry = Registry({route.type: route for route in DEMO_ROUTES})
    services = {"clock": object(), "receipts": object(), "downstream": object()}
    check_wiring(registry, services, {"deposits": object()})
    with pytest.raises(LookupError, match="'receipts'"):
        check_wiring(registry, {"clock": object(), "downstream": object()}, {"deposits": object()})


def test_settings_come_from_fleet_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setenv("FLEET_RATE_LIMITS", "graph=20, payments=5.5")
    monkeypatch.setenv("FLEET_DOWNSTREAM_SLOTS", "graph=1, payments=3")
    settings = Settings()
    assert settings.rate_limits == {"graph": 20.0, "payments": 5.5}
    assert settings.downstream_slots == {"graph": 1, "payments": 3}
    assert not settings.broker_is_redis
    assert settings.coordination_url == "redis://127.0.0.1:6379/0"


def test_a_countdown_longer_than_rabbitmqs_consumer_timeout_is_refused_on_rabbitmq_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_ETA_MAX", "3600")
    assert Settings().eta_max == 3600, "on Redis a countdown keeps its lease however long"
    monkeypatch.setenv("FLEET_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    with pytest.raises(ValidationError, match="consumer_timeout"):
        Settings()
    monkeypatch.setenv("FLEET_ETA_MAX", "1500")
    assert Settings().eta_max == 1500


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("FLEET_BROKER_URL", "kafka://x", "must start with redis://"),
        ("FLEET_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("FLEET_RATE_LIMITS", "graph", "expected name=rate"),
        ("FLEET_DOWNSTREAM_SLOTS", "graph=0", "at least one slot"),
        ("FLEET_GRAPH_TIMEOUT", "0", "greater than 0"),
        ("FLEET_VISIBILITY_TIMEOUT", "5", "greater than or equal to 10"),
        ("FLEET_RABBITMQ_MANAGEMENT_URL", "amqp://guest:guest@rabbit:5672", "management API"),
        ("FLEET_TRACE_URL", "http://jaeger:16686/trace/", "must contain {trace_id}"),
        ("FLEET_TRACE_URL", "javascript:alert(1)//{trace_id}", "http:// or https://"),
        ("FLEET_TRACE_URL", "ftp://traces/{trace_id}", "http:// or https://"),
        ("FLEET_TRACE_URL", "http://tempo/{trace_id}/{span}", "only {trace_id}"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=says) as caught:
        Settings()
    location = caught.value.errors()[0]["loc"]
    assert not location or location[0] == name.removeprefix("FLEET_").lower()


@pytest.mark.parametrize(
    ("prefix", "queue"),
    [
        ("", "fleet.demo"),
        ("acc2", "acc2.fleet.demo"),
        ("acc2.", "acc2.fleet.demo"),
        ("acc2:", "acc2:fleet.demo"),
        ("acc2-", "acc2-fleet.demo"),
        ("acc2_", "acc2_fleet.demo"),
    ],
)
def test_a_queue_prefix_is_separated_from_the_queue_name(prefix: str, queue: str) -> None:
    settings = Settings(queue_prefix=prefix)
    assert settings.queue_name("fleet.demo") == queue
    assert Settings(queue_prefix=settings.queue_prefix).queue_prefix == settings.queue_prefix


def test_a_trace_url_template_puts_the_trace_id_in_its_place() -> None:
    grafana = (
        "https://grafana.example/explore?left=%7B%22queries%22:%5B%7B%22query%22:%22{trace_id}%22%7D%5D%7D"
    )
    settings = Settings(trace_url=grafana)
    assert settings.trace_link("0af7651916cd43dd8448eb211c80319c") == grafana.replace(
        "{trace_id}", "0af7651916cd43dd8448eb211c80319c"
    )
    assert Settings().trace_link("0af7651916cd43dd8448eb211c80319c") is None
