"""Settings from files named after their variables in FLEET_SECRETS_DIR (a mounted Secret), under
the environment; and the Service Bus credential chosen by setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import Settings


def test_a_setting_comes_from_its_file_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "FLEET_CONSOLE_SECRET").write_text("from-the-secret\n")
    (tmp_path / "FLEET_WEB_PORT").write_text("9001")
    monkeypatch.setenv("FLEET_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("FLEET_WEB_PORT", "9002")
    settings = Settings()
    assert settings.console_secret is not None
    assert settings.console_secret.get_secret_value() == "from-the-secret"
    assert settings.web_port == 9002


def test_the_service_bus_credential_and_client_id_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_SERVICEBUS_CREDENTIAL", "managed-identity")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")
    settings = Settings()
    assert (settings.servicebus_credential, settings.servicebus_client_id) == (
        "managed-identity",
        "00000000-0000-0000-0000-000000000001",
    )
    monkeypatch.setenv("FLEET_SERVICEBUS_CREDENTIAL", "password")
    with pytest.raises(ValueError, match="servicebus_credential"):
        Settings()


def test_the_named_credential_kind_is_the_one_made() -> None:
    from azure import identity

    from infra.transports.servicebus_client import CredentialKind, make_credential

    chosen = make_credential(CredentialKind.MANAGED_IDENTITY, "00000000-0000-0000-0000-000000000001")
    try:
        assert isinstance(chosen, identity.ManagedIdentityCredential)
    finally:
        chosen.close()  # type: ignore[attr-defined]
    cli = make_credential(CredentialKind.AZURE_CLI, None)
    assert isinstance(cli, identity.AzureCliCredential)
