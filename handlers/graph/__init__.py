"""The Microsoft Graph domain: change and lifecycle notifications, delta resync, email."""
