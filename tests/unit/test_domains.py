"""Domains are found through the `fleet.domains` entry points; FLEET_DOMAINS chooses which run."""

from __future__ import annotations

import pytest

from handlers.demo.routes import ROUTES as DEMO_ROUTES
from handlers.domains import Domain, UnknownDomain, enabled_domains, installed_domains, route_table
from handlers.registry import Registry
from infra.builtin_domains import CACHE, DEMO, GRAPH, ORDERS
from infra.settings import Settings
from schedules.beat import BEAT_SCHEDULE, beat_schedule


def test_the_built_in_domains_are_found_through_their_entry_points() -> None:
    installed = installed_domains()
    assert {"demo", "graph", "orders", "cache"} <= set(installed)
    assert installed["demo"] is DEMO


def test_fleet_domains_chooses_which_domains_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_DOMAINS", "demo, cache")
    domains = enabled_domains(Settings().domains)
    assert [domain.name for domain in domains] == ["demo", "cache"]
    registry = Registry.for_domains(domains)
    assert {route.type for route in registry.routes()} == {r.type for r in (*DEMO.routes, *CACHE.routes)}
    assert registry.queues() == ["fleet.cache", "fleet.demo"]


def test_no_fleet_domains_runs_every_installed_domain() -> None:
    assert {domain.name for domain in enabled_domains(Settings().domains)} == set(installed_domains())


def test_an_unknown_domain_is_an_error_naming_it_and_the_installed_ones() -> None:
    with pytest.raises(UnknownDomain, match=r"'tickets'.*installed: cache, demo, graph, orders"):
        enabled_domains(["demo", "tickets"], installed={d.name: d for d in (DEMO, GRAPH, ORDERS, CACHE)})


def test_an_event_type_routed_by_two_domains_is_refused() -> None:
    twin = Domain(name="copy", routes=DEMO_ROUTES)
    with pytest.raises(ValueError, match="routed twice"):
        route_table([DEMO, twin])


def test_a_domains_schedules_join_the_fleets_own() -> None:
    schedule = beat_schedule([DEMO, ORDERS])
    assert set(schedule) == {*BEAT_SCHEDULE, "time-out-orders"}
    assert set(beat_schedule([DEMO])) == set(BEAT_SCHEDULE)
    with pytest.raises(ValueError, match="named twice"):
        beat_schedule([ORDERS, Domain(name="again", routes=(), schedules=ORDERS.schedules)])
