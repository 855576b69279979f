"""A small demo domain that exercises every path of the fleet: a database effect, an external
effect, follow-up events, transient failures and a handler that kills its worker."""
