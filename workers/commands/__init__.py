"""The `fleet` subcommands of each domain, added to the group in workers/cli.py."""
