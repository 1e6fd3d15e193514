"""A real HTTP/1.1 server on 127.0.0.1 for egress and webhook tests (asyncio streams).

It records every request, answers webhook POSTs with the next status of `statuses` (then
200), serves `files`, `redirects`, and stalls on `/stall` until the test ends. A POST whose
status is `STALL` gets no answer, one whose status is `DRIP` gets its headers and one byte of
its body, until `release()`; then both get a 200 (`held` counts those waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

#: In `statuses`: answer nothing until `release()`.
STALL = 0
#: In `statuses`: send the head and the first byte of a 2-byte body, the rest at `release()`.
DRIP = -1


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class File:
    data: bytes
    content_type: str = "application/octet-stream"
    #: False: no Content-Length, the body ends when the connection closes.
    declare_length: bool = True


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    files: dict[str, File] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    #: POSTs held now (`STALL`, `DRIP`).
    held: int = 0
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            async with self._changed:
                self.requests.append(Recorded(method, path, headers, body,
                                              asyncio.get_running_loop().time()))
                self._changed.notify_all()
            await self._answer(method, path, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _answer(self, method: str, path: str, writer: asyncio.StreamWriter) -> None:
        if path == "/stall":
            self.stalled.set()
            await self._release.wait()
            return
        if path in self.redirects:
            writer.write(f"HTTP/1.1 302 Found\r\nLocation: {self.redirects[path]}\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        elif path in self.files:
            file = self.files[path]
            length = f"Content-Length: {len(file.data)}\r\n" if file.declare_length else ""
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {file.content_type}\r\n{length}"
                         "Connection: close\r\n\r\n".encode() + file.data)
        elif method == "GET":
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
        else:
            status = self.statuses.pop(0) if self.statuses else 200
            if status in (STALL, DRIP):
                await self._hold(writer, drip=status == DRIP)
                return
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n"
                         "Connection: close\r\n\r\nok".encode())
        await writer.drain()

    async def _hold(self, writer: asyncio.StreamWriter, *, drip: bool) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        if drip:
            writer.write(head + b"o")
            await writer.drain()
        async with self._changed:
            self.held += 1
            self._changed.notify_all()
        try:
            await self._release.wait()
        finally:
            async with self._changed:
                self.held -= 1
                self._changed.notify_all()
        writer.write(b"k" if drip else head + b"ok")
        await writer.drain()

    def release(self) -> None:
        """Answer every held POST (and every later `STALL` or `DRIP`) at once."""
        self._release.set()

    async def wait_held(self, count: int, timeout_s: float = 20.0) -> None:
        """Wait (on a condition, with a deadline) until `count` POSTs are held at once."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.held >= count),
                                   timeout_s)

    async def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Recorded]:
        """Wait (on a condition, with a deadline) until `count` requests arrived."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.requests) >= count), timeout_s)
        return list(self.requests)

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    server = await asyncio.start_server(rec._handle, rec.host, 0)
    rec.port = server.sockets[0].getsockname()[1]
    try:
        yield rec
    finally:
        rec._release.set()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
