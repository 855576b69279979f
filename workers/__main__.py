"""`python -m workers` is the `fleet` command."""

from workers.entry import main

main()
