"""What the web process checks requests with: API keys, Graph subscriptions' clientState, and
the validation tokens and certificate of rich notifications."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from redis import Redis
from sqlalchemy import Engine

from infra.ingress.api_keys import SqlApiKeys
from infra.ingress.graph_crypto import ContentDecryptor, GraphRichNotifications, TokenPolicy, ValidationTokens
from infra.ingress.subscription_secrets import SqlSubscriptionSecrets
from infra.settings import Settings


@dataclass
class IngressChecks:
    settings: Settings
    engine: Engine
    redis: Redis

    @cached_property
    def api_keys(self) -> SqlApiKeys:
        return SqlApiKeys(self.engine, cache_seconds=self.settings.api_key_cache_seconds)

    @cached_property
    def subscription_secrets(self) -> SqlSubscriptionSecrets:
        return SqlSubscriptionSecrets(self.engine, self.redis, self.settings.key_prefix)

    @cached_property
    def graph_rich_notifications(self) -> GraphRichNotifications | None:
        """Token checks and decryption of rich notifications; None unless configured for them."""
        s = self.settings
        key_path = s.graph_private_key_path or s.graph_certificate_path
        if not (key_path and s.graph_certificate_id and s.graph_client_id and s.graph_tenant_id):
            return None
        with open(key_path, "rb") as key_file:
            decryptor = ContentDecryptor(key_file.read(), s.graph_certificate_id)
        policy = TokenPolicy(s.graph_jwks_url, s.graph_client_id, s.graph_tenant_id, s.graph_token_issuers)
        return GraphRichNotifications(ValidationTokens(policy), decryptor)

    def close(self) -> None:
        if "subscription_secrets" in self.__dict__:  # its listener thread
            self.subscription_secrets.close()
