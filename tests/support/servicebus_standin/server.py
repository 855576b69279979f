"""The stand-in's AMQP 1.0 side, on python-qpid-proton: SASL ANONYMOUS, the `$cbs` put-token
node (the SAS signature is checked), entity links for send and peek-lock receive (dispositions:
accepted = complete, modified = abandon or defer, rejected + `com.microsoft:dead-letter` =
dead-letter), and the `<entity>/$management` node (renew-lock, schedule-message, peek-message,
renew-session-lock)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import urllib.parse
import uuid
from typing import Any

from proton import Array, Condition, Data, Delivery, Endpoint, Link, Message, symbol, timestamp
from proton.handlers import MessagingHandler

from tests.support.servicebus_standin.store import Store

log = logging.getLogger("servicebus_standin")
SESSION_FILTER = symbol("com.microsoft:session-filter")
LOCKED_UNTIL_UTC = symbol("com.microsoft:locked-until-utc")
DEAD_LETTER = "com.microsoft:dead-letter"
NET_EPOCH_TICKS = 621355968000000000  # .NET ticks at the Unix epoch
_DATA_SECTION = 0x75


def entity_of(address: str | None) -> str:
    """`amqp://host:port/queue/$DeadLetterQueue` -> `queue/$DeadLetterQueue`."""
    path = urllib.parse.urlparse(address or "").path if "://" in (address or "") else (address or "")
    return path.strip("/")


def split_batch(raw: bytes) -> list[bytes] | None:
    """The inner messages of a batch (format 0x80013700: data sections that are encoded messages)."""
    inner, position = [], 0
    while position < len(raw):
        data = Data()
        used = data.decode(raw[position:])
        data.rewind()
        data.next()
        value: Any = data.get_object()
        if getattr(value, "descriptor", None) == _DATA_SECTION:
            inner.append(bytes(value.value))
        position += used
    if inner and all(body.startswith(b"\x00S") for body in inner):
        return inner
    return None


class ServiceBusHandler(MessagingHandler):  # type: ignore[misc]
    def __init__(self, store: Store, *, key_name: str, key: str) -> None:
        super().__init__(prefetch=0, auto_accept=False, auto_settle=False)
        self.store = store
        self._key_name = key_name
        self._key = key
        self._unsettled: dict[uuid.UUID, Delivery] = {}
        self._connections: list[Any] = []
        self.connections_opened = 0
        """AMQP connections clients opened so far (a handshake each)."""
        self.acceptor: Any = None

    def on_connection_opening(self, event: Any) -> None:
        self._connections.append(event.connection)
        self.connections_opened += 1

    # -- links ----------------------------------------------------------------------------------

    def on_link_opening(self, event: Any) -> None:
        link: Link = event.link
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        if link.is_receiver:
            link.flow(1000)
            return
        address = entity_of(link.remote_source.address)
        if address == "$cbs" or address.endswith("$management"):
            replies = getattr(link.connection, "standin_replies", None) or {}
            replies[address] = link
            link.connection.standin_replies = replies
            return
        link.standin_entity = address
        link.standin_session = None
        filters = _read(link.remote_source.filter)
        if isinstance(filters, dict) and SESSION_FILTER in filters:
            session = self.store.lock_session(address, link.name, filters[SESSION_FILTER])
            if session is None:  # the service holds the attach until its timeout; no need to here
                link.condition = Condition("com.microsoft:timeout", "no unlocked session is available")
                link.open()
                link.close()
                return
            link.standin_session = session
            link.source.filter.clear()
            link.source.filter.put_dict({SESSION_FILTER: session})
            until = self.store.renew_session(address, session)
            link.properties = {LOCKED_UNTIL_UTC: int(NET_EPOCH_TICKS + until * 10_000_000)}
        elif self.store.entity(address).requires_session:
            link.condition = Condition("amqp:not-allowed", "the entity requires sessions")

    def on_link_closing(self, event: Any) -> None:
        self._forget(event.link)

    def on_disconnected(self, event: Any) -> None:
        for link in list(_links(event.connection)):
            self._forget(link)
        if event.connection in self._connections:
            self._connections.remove(event.connection)

    def drop_connections(self) -> None:
        """An outage: every client loses its connection (locks stay, as on the real service)."""
        for connection in list(self._connections):
            connection.close()
            if connection.transport is not None:
                connection.transport.close_tail()
                connection.transport.close_head()

    def _forget(self, link: Link) -> None:
        entity = getattr(link, "standin_entity", None)
        if entity is not None:
            self.store.release_session(entity, link.standin_session)

    def on_sendable(self, event: Any) -> None:
        self.pump(event.link)

    def pump(self, link: Link) -> None:
        entity = getattr(link, "standin_entity", None)
        if entity is None or not link.state & Endpoint.LOCAL_ACTIVE:
            return
        while link.credit > 0:
            taken = self.store.take(entity, link.name, link.standin_session)
            if taken is None:
                return
            token, stored = taken
            message = stored.message
            annotations = dict(message.annotations or {})
            annotations["x-opt-locked-until"] = timestamp(int(self.store.renew(entity, token) or 0) * 1000)
            annotations["x-opt-enqueued-time"] = timestamp(int(stored.enqueued_at * 1000))
            annotations["x-opt-lock-token"] = token
            message.annotations = annotations
            message.durable = True  # a header goes out, with the delivery count, as the service sends
            message.delivery_count = stored.delivery_count - 1
            delivery = link.delivery(token.bytes_le)
            delivery.standin_token = token
            link.send(message.encode())
            link.advance()
            self._unsettled[token] = delivery

    # -- incoming: sends and requests ------------------------------------------------------------

    def on_delivery(self, event: Any) -> None:
        delivery: Delivery = event.delivery
        link: Link = delivery.link
        if link.is_sender:
            self._settlement(delivery)
            return
        if delivery.partial or not delivery.readable:
            return
        raw = link.recv(delivery.pending)
        link.advance()
        address = entity_of(link.remote_target.address)
        try:
            if address == "$cbs":
                self._put_token(link, _decode(raw))
            elif address.endswith("$management"):
                self._management(link, address.rsplit("/", 1)[0], _decode(raw))
            else:
                for body in split_batch(raw) or [raw]:
                    self.store.enqueue(address, _decode(body))
        except Exception as exc:
            log.exception("refused a delivery on %s", address)
            delivery.local.condition = Condition("amqp:internal-error", str(exc))
            delivery.update(Delivery.REJECTED)
        else:
            delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        link.flow(1)

    def _settlement(self, delivery: Delivery) -> None:
        if not delivery.updated:
            return
        token = getattr(delivery, "standin_token", None)
        if token is None:
            return
        entity = getattr(delivery.link, "standin_entity", "")
        state = delivery.remote_state
        remote = delivery.remote
        if state == Delivery.ACCEPTED:
            ok = self.store.settle(entity, token, "complete")
        elif state == Delivery.REJECTED:
            condition = remote.condition
            info = dict(condition.info or {}) if condition and condition.name == DEAD_LETTER else {}
            ok = self.store.settle(entity, token, "dead-letter", {str(k): v for k, v in info.items()})
        elif state == Delivery.MODIFIED and remote.undeliverable:
            ok = self.store.settle(entity, token, "defer")
        elif state in (Delivery.MODIFIED, Delivery.RELEASED):
            ok = self.store.settle(entity, token, "abandon")
        else:
            return
        self._unsettled.pop(token, None)
        if not ok:
            delivery.local.condition = Condition(
                "com.microsoft:message-lock-lost", "the lock was lost or the message was settled"
            )
            delivery.update(Delivery.REJECTED)
        else:
            delivery.update(state)
        delivery.settle()

    def _reply(
        self, link: Link, address: str, request: Message, status: int, body: Any, *, code_key: str
    ) -> None:
        reply_link = (getattr(link.connection, "standin_replies", None) or {}).get(address)
        if reply_link is None:
            return
        response = Message(body=body, correlation_id=request.id)
        response.properties = {
            code_key: status,
            code_key.replace("Code", "Description").replace("code", "description"): "OK"
            if status < 300
            else "error",
        }
        reply_link.send(response)

    def _put_token(self, link: Link, request: Message) -> None:
        token = str(request.body)
        ok = self._valid_sas(token) if token.startswith("SharedAccessSignature ") else True
        self._reply(link, "$cbs", request, 202 if ok else 401, None, code_key="status-code")

    def _valid_sas(self, token: str) -> bool:
        fields = dict(urllib.parse.parse_qsl(token.removeprefix("SharedAccessSignature ")))
        to_sign = f"{urllib.parse.quote_plus(fields.get('sr', ''))}\n{fields.get('se', '')}"
        digest = hmac.new(self._key.encode(), to_sign.encode(), hashlib.sha256).digest()
        expected = base64.b64encode(digest).decode()
        return fields.get("skn") == self._key_name and hmac.compare_digest(fields.get("sig", ""), expected)

    def _management(self, link: Link, entity: str, request: Message) -> None:
        operation = str((request.properties or {}).get("operation"))
        body: dict[Any, Any] = request.body or {}
        if operation == "com.microsoft:renew-lock":
            tokens = _elements(body.get("lock-tokens"))
            expirations = [self.store.renew(entity, token) for token in tokens]
            if any(until is None for until in expirations):
                self._reply(link, f"{entity}/$management", request, 410, None, code_key="statusCode")
                return
            stamps = [timestamp(int(until * 1000)) for until in expirations if until is not None]
            result = {"expirations": Array(None, Data.TIMESTAMP, *stamps)}
        elif operation == "com.microsoft:schedule-message":
            numbers = []
            for item in _elements(body.get("messages")):
                message = _decode(bytes(item["message"]))
                due = (message.annotations or {}).get("x-opt-scheduled-enqueue-time")
                seq = self.store.enqueue(entity, message, at=float(due) / 1000 if due is not None else None)
                numbers.append(seq or 0)
            result = {"sequence-numbers": Array(None, Data.LONG, *numbers)}
        elif operation == "com.microsoft:peek-message":
            stored = self.store.peek(
                entity, int(body.get("from-sequence-number", 0)), int(body["message-count"])
            )
            if not stored:
                self._reply(link, f"{entity}/$management", request, 204, None, code_key="statusCode")
                return
            result = {"messages": [{"message": s.message.encode()} for s in stored]}
        elif operation == "com.microsoft:renew-session-lock":
            until = self.store.renew_session(entity, str(body["session-id"]))
            result = {"expiration": timestamp(int(until * 1000))}
        else:
            self._reply(link, f"{entity}/$management", request, 501, None, code_key="statusCode")
            return
        self._reply(link, f"{entity}/$management", request, 200, result, code_key="statusCode")

    # -- time -----------------------------------------------------------------------------------

    def on_timer_task(self, event: Any) -> None:
        self.store.tick()
        for token, delivery in list(self._unsettled.items()):
            if delivery.link.state & Endpoint.LOCAL_CLOSED or delivery.settled:
                self._unsettled.pop(token, None)
        for connection in self._connections:
            for link in _links(connection):
                if link.is_sender:
                    self.pump(link)
        event.container.schedule(0.05, self)


def _read(data: Data | None) -> Any:
    if data is None:
        return None
    data.rewind()
    return data.get_object() if data.next() is not None else None


def _decode(raw: bytes) -> Message:
    message = Message()
    message.decode(raw)
    return message


def _elements(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value.elements) if isinstance(value, Array) else list(value)


def _links(connection: Any) -> list[Link]:
    links = []
    link = connection.link_head(0)
    while link:
        links.append(link)
        link = link.next(0)
    return links
