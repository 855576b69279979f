"""Microsoft Graph through the real SDK, against the Graph and Entra ID stand-ins."""
