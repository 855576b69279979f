"""`python -m workers` is the `fleet` command."""

from workers.cli import main

main()
