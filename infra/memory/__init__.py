"""In-memory stores implementing the engine's Protocols (engine/ports.py): the test twin's
(fleet.testing) and the contract tests' third backend. One process, no I/O."""
