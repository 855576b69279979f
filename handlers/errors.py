"""The one error tree of the fleet.

    FleetError
     ├── RetryableError          transient: retried with backoff until the attempt limit
     │    ├── RateLimited        a downstream said when to come back (Retry-After)
     │    └── PublishFailed      a producer's events did not all reach the broker (`sent`, `unsent`)
     │         └── BrokerUnavailable  the broker refused, dropped or did not answer in time
     └── PermanentError          never retried: dead-lettered on the attempt it happened
          ├── InvalidEvent       the envelope or its data broke the schema (names the field)
          ├── EventTooLarge      over the size limit
          └── UnknownEventType   no route in the registry

Any other exception raised by a handler counts as retryable: a bug that a deploy fixes is
better retried a few times and then dead-lettered than dropped.
"""

from __future__ import annotations


class FleetError(Exception):
    """Base of everything the fleet raises on purpose."""


class RetryableError(FleetError):
    """The attempt failed for a reason that may pass; try again later."""


class RateLimited(RetryableError):
    """A downstream asked us to wait `retry_after` seconds before the next call."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        self.retry_after = max(0.0, float(retry_after))
        super().__init__(message or f"rate limited: retry after {self.retry_after:g}s")


class PublishFailed(RetryableError):
    """Not every event of a publish is known to be on the broker.

    `sent`: the ids the broker confirmed holding. `unsent`: the rest, which may or may not have
    reached it (a reply lost in a timeout): publish them again; their ids make that harmless.
    """

    def __init__(self, message: str, *, sent: tuple[str, ...] = (), unsent: tuple[str, ...] = ()) -> None:
        self.sent = tuple(sent)
        self.unsent = tuple(unsent)
        super().__init__(f"{message} ({len(self.sent)} events sent, {len(self.unsent)} not)")


class BrokerUnavailable(PublishFailed):
    """The broker could not be reached, or did not answer within the publish timeout."""


class PermanentError(FleetError):
    """Trying again cannot help; the event goes to the dead-letter queue at once."""


class InvalidEvent(PermanentError):
    """The event breaks the envelope schema; `field` names the offending attribute."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class EventTooLarge(InvalidEvent):
    """The encoded event is over the configured size limit."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__("", f"event is {size} bytes, over the limit of {limit} bytes")


class UnknownEventType(PermanentError):
    """No route handles this event type."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        super().__init__(f"type: no handler is registered for event type {event_type!r}")
