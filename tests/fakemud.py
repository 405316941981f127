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

__all__ = ["FakeMud", "FakeConnection"]


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

    async def wait_for(self, needle: bytes, timeout: float = 5) -> int:
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

    async def wait_closed(self, timeout: float = 5) -> None:
        """Wait until the client closed its side (EOF or reset)."""
        try:
            await asyncio.wait_for(self._eof_event.wait(), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"client did not close within {timeout}s; "
                f"received: {_tail(self.received)!r}"
            ) from None

    # -- closing ------------------------------------------------------------
    def close(self) -> None:
        """Close from the server side (queued bytes are flushed first)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._writer.close()


class FakeMud:
    """A TCP server on 127.0.0.1 that records and scripts its connections."""

    def __init__(self, on_connect: bytes = b"", accept: bool = True, ssl: Any = None) -> None:
        self.host = "127.0.0.1"
        self.ssl = ssl  # an ssl.SSLContext: "secure telnet"
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
        conn = FakeConnection(reader, writer)
        self.connections.append(conn)
        if self.on_connect:
            conn.send(self.on_connect)
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

    async def next_connection(self, timeout: float = 5) -> FakeConnection:
        """The next accepted connection not yet returned, in accept order."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"no new connection within {timeout}s "
                f"({len(self.connections)} accepted so far, {self.rejected} rejected)"
            ) from None

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
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
