"""Released schemas hold: a model may widen under its version, never break it."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest
from pydantic import Field

from handlers.compatibility import breaking_changes, check, current_schema, released_schema
from handlers.contracts import EventData
from handlers.registry import ROUTES, Registry

DEPOSIT = Registry().route_for("demo.deposit_recorded")


def released_deposit() -> dict[str, object]:
    released = released_schema(DEPOSIT)
    assert released is not None
    return released


def test_every_route_honours_its_released_schema() -> None:
    problems = [problem for route in ROUTES.values() for problem in check(route)]
    assert problems == [], "\n".join(problems)


def test_removing_a_required_field_breaks_the_contract() -> None:
    class WithoutAmount(EventData):
        account: str = Field(min_length=1)
        email: str | None = None
        work_ms: float | None = Field(default=None, ge=0)

    assert breaking_changes(released_deposit(), WithoutAmount.model_json_schema()) == [
        "data.amount: required field removed (or renamed)"
    ]
    changed = dataclasses.replace(DEPOSIT, data=WithoutAmount)
    assert check(changed) == ["demo.deposit_recorded v1: data.amount: required field removed (or renamed)"]


def test_a_bumped_version_is_a_new_contract_that_must_be_released() -> None:
    class WithoutAmount(EventData):
        account: str

    bumped = dataclasses.replace(DEPOSIT, data=WithoutAmount, data_version=2)
    assert check(bumped) == ["demo.deposit_recorded v2 is not released: run `fleet events release`"]


class Renamed(EventData):
    account: str = Field(min_length=1)
    value: int = Field(gt=0)


class NewRequired(EventData):
    account: str = Field(min_length=1)
    amount: int = Field(gt=0)
    currency: str


class NarrowerTypes(EventData):
    account: Literal["a-1", "a-2"]
    amount: int = Field(gt=10)
    email: str
    work_ms: int | None = None


class Wider(EventData):
    account: str
    amount: int | str = Field(default=0)
    email: str | None = None
    work_ms: float | None = None
    note: str | None = None


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Renamed, ["data.amount: required field removed (or renamed)", "data.value: new required field"]),
        (NewRequired, ["data.currency: new required field"]),
        (
            NarrowerTypes,
            [
                "data.account: enum narrowed to ['a-1', 'a-2']",
                "data.amount: exclusiveMinimum raised to 10",
                "data.email: no longer takes null",
                "data.work_ms: type narrowed (no longer takes number)",
                "data.email: new required field",
            ],
        ),
        (Wider, []),
    ],
)
def test_renaming_adding_a_required_field_and_narrowing_break_widening_does_not(
    model: type[EventData], expected: list[str]
) -> None:
    assert breaking_changes(released_deposit(), model.model_json_schema()) == expected


def test_the_current_schema_is_the_models() -> None:
    assert current_schema(DEPOSIT)["required"] == ["account", "amount"]
