"""Microsoft Graph adapters: the SDK client, subscriptions, delta links, email."""
