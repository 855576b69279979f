"""Which SDK exceptions mean "the broker is unavailable", and their translation to fleet errors.

kombu raises `OperationalError` once its retries are spent; redis-py its `RedisError`s
(unreachable, timed out, refusing: out of memory); py-amqp its `AMQPError`s (a closed channel, a
refused publish); and the sockets underneath `OSError`s (`ConnectionError`, `TimeoutError`).
"""

from __future__ import annotations

from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from handlers.errors import BrokerUnavailable

BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    RedisError,
    AMQPError,
    OSError,  # ConnectionError, TimeoutError, socket.timeout among them
)


def is_broker_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, BROKER_ERRORS)


def unavailable(
    exc: BaseException, *, sent: tuple[str, ...] = (), unsent: tuple[str, ...] = ()
) -> BrokerUnavailable:
    """The fleet error for a broker failure; `raise unavailable(exc, ...) from exc`."""
    return BrokerUnavailable(
        f"the broker is unavailable: {type(exc).__name__}: {exc}", sent=sent, unsent=unsent
    )
