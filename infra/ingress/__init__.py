"""Adapters of the HTTP ingress: API keys, Graph subscription secrets, webhook and Graph crypto."""
