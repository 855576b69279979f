"""An Azure Service Bus stand-in for tests: AMQP 1.0 on 127.0.0.1, reached by the unmodified
`azure-servicebus` SDK through a connection string with `UseDevelopmentEmulator=true`.

    with ServiceBusStandIn(sessions={"ordered"}) as bus:
        ServiceBusClient.from_connection_string(bus.connection_string) ...

It is a fixture, not a product: one process, state in memory, entities made on first use.
"""

from __future__ import annotations

import threading
from typing import Any

from proton.reactor import ApplicationEvent, Container, EventInjector

from tests.support.processes import free_port
from tests.support.servicebus_standin.server import ServiceBusHandler
from tests.support.servicebus_standin.store import Store

KEY_NAME = "RootManageSharedAccessKey"
KEY = "standin-key"


class ServiceBusStandIn:
    def __init__(
        self,
        *,
        lock_duration: float = 30.0,
        max_delivery_count: int = 10,
        duplicate_window: float = 600.0,
        sessions: set[str] | None = None,
        port: int | None = None,
    ) -> None:
        self.store = Store(
            lock_duration=lock_duration,
            max_delivery_count=max_delivery_count,
            duplicate_window=duplicate_window,
            sessions=sessions or set(),
        )
        self.port = port or free_port()
        self._handler = _Controlled(self.store, key_name=KEY_NAME, key=KEY, port=self.port)
        self._injector = EventInjector()
        self._container = Container(self._handler)
        self._container.selectable(self._injector)
        self._thread = threading.Thread(target=self._container.run, name="servicebus-standin", daemon=True)

    @property
    def connection_string(self) -> str:
        return (
            f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName={KEY_NAME};"
            f"SharedAccessKey={KEY};UseDevelopmentEmulator=true;"
        )

    @property
    def connections_opened(self) -> int:
        """AMQP connections clients opened so far: each sender or receiver opens one."""
        return self._handler.connections_opened

    def start(self) -> ServiceBusStandIn:
        self._thread.start()
        self._handler.listening.wait(10)
        return self

    def stop(self) -> None:
        self._injector.trigger(ApplicationEvent("standin_stop"))
        self._thread.join(10)

    def go_down(self) -> None:
        """Refuse connections and drop the open ones, as an unreachable namespace does."""
        self._handler.listening.clear()
        self._injector.trigger(ApplicationEvent("standin_down"))
        self._handler.down.wait(10)

    def come_back(self) -> None:
        self._injector.trigger(ApplicationEvent("standin_up"))
        self._handler.listening.wait(10)

    def __enter__(self) -> ServiceBusStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Controlled(ServiceBusHandler):
    def __init__(self, store: Store, *, key_name: str, key: str, port: int) -> None:
        super().__init__(store, key_name=key_name, key=key)
        self._port = port
        self.listening = threading.Event()
        self.down = threading.Event()

    def on_start(self, event: Any) -> None:
        self._container = event.container
        self._listen(event.container)
        event.container.schedule(0.05, self)

    def _listen(self, container: Any) -> None:
        self.acceptor = container.listen(f"127.0.0.1:{self._port}")
        self.down.clear()
        self.listening.set()

    def on_standin_down(self, event: Any) -> None:
        self.acceptor.close()
        self.drop_connections()
        self.down.set()

    def on_standin_up(self, event: Any) -> None:
        self._listen(self._container)

    def on_standin_stop(self, event: Any) -> None:
        self.acceptor.close()
        self.drop_connections()
        self._container.stop()
