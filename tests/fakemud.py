"""A scriptable fake MUD server for integration tests.

It speaks no telnet of its own: it sends exactly the bytes a test tells it to
(plus ``on_connect`` on accept) and records every byte the client sends,
raw.  Typical use::

    mud = await FakeMud().start()
    ...  # point the gateway at mud.host / mud.port
    conn = await mud.next_connection()
    conn.send(b"\\xff\\xfb\\xc9")          # IAC WILL GMCP
    await conn.wait_for(b"\\xff\\xfd\\xc9")  # IAC DO GMCP
    await mud.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["EVENTUALLY", "FakeMud", "FakeConnection", "HeldHandshake"]

#: The ceiling on every wait for something that is to happen (here and in conftest.py's
#: ``until``, ``Phx``): only a broken feature takes this long, never a slow machine.
EVENTUALLY = 30.0


def _tail(data: bytes | bytearray, limit: int = 2000) -> bytes:
    data = bytes(data)
    if len(data) > limit:
        return b"..." + data[-limit:]
    return data


class FakeConnection:
    """One accepted client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.received = bytearray()
        self.peer: tuple = tuple(writer.get_extra_info("peername") or ())
        self.closed = False
        self.eof = False  # the client closed its side
        self._cursor = 0
        self._changed = asyncio.Event()
        self._eof_event = asyncio.Event()
        self._task: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"<FakeConnection peer={self.peer!r} received={len(self.received)}B closed={self.closed}>"

    # -- sending ------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Send raw bytes (no IAC escaping). Ignored once the connection closed."""
        if self.closed or self._writer.is_closing():
            return
        self._writer.write(bytes(data))

    async def drain(self) -> None:
        if self.closed or self._writer.is_closing():
            return
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    def unsent(self) -> int:
        """Bytes written that the kernel has not taken yet (TCP pushes back: the client does not read)."""
        return 0 if self._writer.is_closing() else self._writer.transport.get_write_buffer_size()

    @property
    def socket(self) -> Any:
        """This end's socket (for its kernel queues: conftest.py ``queued``)."""
        return self._writer.get_extra_info("socket")

    # -- receiving ----------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                self.received += data
                self._changed.set()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.eof = True
            self._eof_event.set()
            self._changed.set()
            self.close()

    async def wait_for(self, needle: bytes, timeout: float = EVENTUALLY) -> int:
        """Wait until ``needle`` occurs in ``received`` past the cursor.

        Returns the index just past the match and moves the cursor there, so
        repeated calls find successive occurrences.  Raises
        ``asyncio.TimeoutError`` (with what was received) on timeout, or at
        once when the client has closed and the needle can no longer arrive.
        """
        needle = bytes(needle)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            idx = self.received.find(needle, self._cursor)
            if idx >= 0:
                self._cursor = idx + len(needle)
                return self._cursor
            if self.eof:
                raise asyncio.TimeoutError(
                    f"connection closed before {needle!r} arrived (cursor at "
                    f"{self._cursor}); received: {_tail(self.received)!r}"
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        raise asyncio.TimeoutError(
            f"timed out after {timeout}s waiting for {needle!r} (cursor at "
            f"{self._cursor}); received: {_tail(self.received)!r}"
        )

    async def wait_closed(self, timeout: float = EVENTUALLY) -> None:
        """Wait until the client closed its side (EOF or reset)."""
        try:
            await asyncio.wait_for(self._eof_event.wait(), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"client did not close within {timeout}s; "
                f"received: {_tail(self.received)!r}"
            ) from None

    # -- closing ------------------------------------------------------------
    def pause_reading(self) -> None:
        """Stop reading what the client sends (a game that hangs): its writes back up."""
        self._writer.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read what the client sends again (the game that hung goes on)."""
        self._writer.transport.resume_reading()

    def tcp_state(self) -> int:
        """The kernel's TCP state of this end (Linux ``TCP_INFO``): 1 established, 7 closed."""
        import socket
        sock = self._writer.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            return 7
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]

    def close(self) -> None:
        """Close from the server side (queued bytes are flushed first)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._writer.close()


class HeldHandshake:
    """An accepted TCP connection whose TLS handshake waits for the test: the client is still connecting."""

    def __init__(self) -> None:
        self._decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        #: Set once the decision is carried out: closed, the handshake failed, or the
        #: connection is one of ``FakeMud.connections``.
        self.settled = asyncio.Event()

    def release(self) -> None:
        """Do the TLS handshake now: the client's connect completes."""
        if not self._decision.done():
            self._decision.set_result(True)

    def refuse(self) -> None:
        """Close instead of shaking hands: the client's connect fails."""
        if not self._decision.done():
            self._decision.set_result(False)


class _HeldProtocol(asyncio.Protocol):
    """A TCP connection that reads nothing (the client's TLS hello waits in the kernel) until released."""

    def __init__(self, mud: "FakeMud") -> None:
        self.mud = mud

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.pause_reading()  # type: ignore[attr-defined]  # before the first read
        self.mud._hold(transport)  # type: ignore[arg-type]


class FakeMud:
    """A TCP server on 127.0.0.1 that records and scripts its connections.

    With ``hold_handshake`` (and ``ssl``), every TLS handshake waits until the
    test releases or refuses it (``next_held``): a connecting window as long
    as the test needs, however fast the machine.
    """

    def __init__(self, on_connect: bytes = b"", accept: bool = True, ssl: Any = None,
                 hold_handshake: bool = False, hang_up: bool = False) -> None:
        self.host = "127.0.0.1"
        self.ssl = ssl  # an ssl.SSLContext: "secure telnet"
        self.hold_handshake = hold_handshake
        self.hang_up = hang_up  # close each connection right after on_connect ("game full")
        self._held: asyncio.Queue[HeldHandshake] = asyncio.Queue()
        self.held: list[HeldHandshake] = []  # every handshake ever held
        self.port = 0
        self.on_connect: bytes = on_connect
        self.accept: bool = accept
        self.connections: list[FakeConnection] = []
        self.rejected = 0  # connections closed at once because accept was False
        self._server: asyncio.base_events.Server | None = None
        self._queue: asyncio.Queue[FakeConnection] = asyncio.Queue()
        self._tasks: set[asyncio.Task] = set()
        self._rejected_writers: set[asyncio.StreamWriter] = set()

    def __repr__(self) -> str:
        return f"<FakeMud {self.host}:{self.port} connections={len(self.connections)}>"

    async def start(self) -> "FakeMud":
        if self.hold_handshake:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(lambda: _HeldProtocol(self), self.host, 0)
        else:
            self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accept or self._server is None or not self._server.is_serving():
            self.rejected += 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        await self._serve(reader, writer)

    def _hold(self, transport: asyncio.Transport) -> None:
        held = HeldHandshake()
        self.held.append(held)
        self._held.put_nowait(held)
        task = asyncio.ensure_future(self._handshake(held, transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handshake(self, held: HeldHandshake, transport: asyncio.Transport) -> None:
        try:
            if not await held._decision or self._server is None or not self._server.is_serving():
                self.rejected += 1
                transport.close()
                return
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader()
            protocol = asyncio.StreamReaderProtocol(reader)
            try:
                tls = await loop.start_tls(transport, protocol, self.ssl, server_side=True)
            except (ConnectionError, OSError):  # the client gave up meanwhile
                transport.close()
                return
        finally:
            held.settled.set()  # its waiters run once this task yields: after _serve took the connection
        protocol.connection_made(tls)
        await self._serve(reader, asyncio.StreamWriter(tls, protocol, reader, loop))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = FakeConnection(reader, writer)
        self.connections.append(conn)
        if self.on_connect:
            conn.send(self.on_connect)
        if self.hang_up:
            conn.close()
        self._queue.put_nowait(conn)
        task = asyncio.current_task()
        if task is not None:
            conn._task = task
            self._tasks.add(task)
        try:
            await conn._read_loop()
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def next_connection(self, timeout: float = EVENTUALLY) -> FakeConnection:
        """The next accepted connection not yet returned, in accept order."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"no new connection within {timeout}s "
                f"({len(self.connections)} accepted so far, {self.rejected} rejected)"
            ) from None

    def unclaimed(self) -> int:
        """Connections accepted and not yet returned by ``next_connection``."""
        return self._queue.qsize()

    async def next_held(self, timeout: float = EVENTUALLY) -> HeldHandshake:
        """The next connection whose TLS handshake waits (``hold_handshake``), in accept order."""
        try:
            return await asyncio.wait_for(self._held.get(), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"no held handshake within {timeout}s") from None

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for held in self.held:
            held.refuse()
        for conn in self.connections:
            conn.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def __aenter__(self) -> "FakeMud":
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
