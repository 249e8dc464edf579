"""A connection guard under the routes: a client must finish its request headers within a
deadline and within a size limit, or its connection is closed (with a 408 / 431 when it can
still be told). uvicorn only times out idle keep-alive connections, so a client that opens a
connection and trickles (or never sends) its headers would otherwise hold it forever.
"""
from __future__ import annotations

import asyncio
from typing import Any

#: Seconds a client may take from opening a connection (or finishing a response) to the end
#: of its next request's headers.
HEADER_TIMEOUT_S = 10.0
#: Bytes of request line + headers accepted before the headers must be complete.
MAX_HEADER_BYTES = 64 * 1024


def _base() -> type:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


def guarded_protocol(header_timeout_s: float = HEADER_TIMEOUT_S,
                     max_header_bytes: int = MAX_HEADER_BYTES) -> type:
    """An HTTP protocol class for uvicorn.Config(http=...) with the header deadline and limit."""
    base: Any = _base()

    class HeaderGuardProtocol(base):  # type: ignore[misc, valid-type]
        _jm_timer: asyncio.TimerHandle | None = None
        _jm_pending = 0  # header bytes of the request being read; -1 once headers are complete

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._jm_arm()

        def _jm_arm(self) -> None:
            self._jm_disarm()
            self._jm_pending = 0
            self._jm_timer = self.loop.call_later(header_timeout_s, self._jm_expire)

        def _jm_disarm(self) -> None:
            if self._jm_timer is not None:
                self._jm_timer.cancel()
                self._jm_timer = None

        def _jm_expire(self) -> None:
            self._jm_timer = None
            if self._jm_pending >= 0 and not self.transport.is_closing():
                if self._jm_pending:
                    self._jm_refuse(b"408 Request Timeout", b"request headers took too long")
                else:
                    self.transport.close()

        def _jm_refuse(self, status: bytes, text: bytes) -> None:
            body = (b'{"status":"error","action":"?","data":{},"error":{"type":"'
                    + (b"request_timeout" if status.startswith(b"408") else b"headers_too_large")
                    + b'","message":"' + text + b'","hint":"","field":null}}')
            self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._jm_pending >= 0:
                self._jm_pending += len(data)
                if self._jm_pending > max_header_bytes:
                    self._jm_disarm()
                    self._jm_refuse(b"431 Request Header Fields Too Large",
                                    b"request headers are too large")
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._jm_pending = -1
            self._jm_disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Re-arm for the next request, unless a pipelined one (headers already read) began.
            if not self.transport.is_closing() and (self.cycle is None
                                                    or self.cycle.response_complete):
                self._jm_arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._jm_disarm()
            super().connection_lost(exc)

    return HeaderGuardProtocol
