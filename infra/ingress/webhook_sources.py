"""How one system's signed webhooks become events: the event type and the signing secrets."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from infra.ingress.standard_webhooks import secret_bytes


class WebhookSource(BaseModel):
    """`FLEET_WEBHOOK_SOURCES='{"shop": {"type": "orders.placed", "secrets": ["whsec_..."]}}'`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:\-]+$")
    """The event type every webhook of this source becomes (its route must exist)."""
    secrets: tuple[str, ...] = Field(min_length=1)
    """Signing secrets, `whsec_<base64>`; more than one while a rotation is under way."""

    @field_validator("secrets")
    @classmethod
    def _well_formed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for secret in value:
            secret_bytes(secret)
        return value
