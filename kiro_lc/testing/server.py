"""HTTP/1.1 plumbing of the emulator: a threading server that tracks its sockets, and a handler
that plays a :class:`~.replies.Plan` (JSON answer or chunked event stream) onto the wire."""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kiro_lc.testing.replies import Plan, Step
from kiro_lc.testing.service import Incoming, KiroService

logger = logging.getLogger("kiro_lc.testing")

MAX_BODY_BYTES = 64 * 1024 * 1024
_POLL = 0.05


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that remembers open connections so :meth:`close_connections` can
    end them, even in the middle of a stalled stream."""

    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 makes bursts of concurrent clients wait for SYN retries.
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        service: KiroService,
        *,
        split_frames: float,
        seed: int,
    ) -> None:
        self.service = service
        self.split_frames = split_frames
        self.seed = seed
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, EmulatorHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping the connection mid-stream is normal here (timeouts, resets, Ctrl-C):
        log it at DEBUG instead of printing a traceback to stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.stopping.is_set():
            logger.debug("connection from %s ended: %r", client_address, exc)
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut down and close every open client connection."""
        with self._conn_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


class EmulatorHandler(BaseHTTPRequestHandler):
    """Reads one request, asks the service for a plan, writes it."""

    protocol_version = "HTTP/1.1"
    server_version = "KiroEmulator/1.0"
    sys_version = ""
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    # -- reading -------------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send_json(400, b'{"message":"Unreadable request body.","reason":null}', "")
            return
        split = urlsplit(self.path)
        incoming = Incoming(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            request_id=str(uuid.uuid4()),
            client_port=self.client_address[1] if len(self.client_address) > 1 else None,
        )
        service = self.server.service
        rng = random.Random(f"{self.server.seed}:{service.next_sequence()}")
        try:
            plan = service.handle(incoming)
        except Exception:
            logger.exception("KiroEmulator failed to handle %s %s", self.command, split.path)
            plan = Plan(status=500, body=b'{"message":"Emulator error.","reason":null}')
        try:
            self._play(plan, incoming.request_id, rng)
        except (OSError, ValueError):
            self.close_connection = True  # the client went away or the emulator is stopping

    # -- writing -------------------------------------------------------------------------------

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the emulator stops first; True when the emulator is stopping."""
        return self.server.stopping.wait(seconds) if seconds > 0 else self.server.stopping.is_set()

    def _play(self, plan: Plan, request_id: str, rng: random.Random) -> None:
        if self._wait(plan.latency):
            self.close_connection = True
            return
        if plan.status == 0:
            self._run_steps(plan.steps, rng)
            return
        if plan.body is not None:
            ctype = dict(plan.headers).get("Content-Type", "application/json")
            extra = [(k, v) for k, v in plan.headers if k != "Content-Type"]
            self._send_json(plan.status, plan.body, request_id, ctype, extra)
            return
        self.send_response(plan.status)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-amzn-RequestId", request_id)
        for name, value in plan.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self._run_steps(plan.steps, rng):
            self.wfile.write(b"0\r\n\r\n")

    def _send_json(
        self,
        status: int,
        body: bytes,
        request_id: str,
        ctype: str = "application/json",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if request_id:
            self.send_header("x-amzn-RequestId", request_id)
        for name, value in extra or []:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    def _run_steps(self, steps: tuple[Step, ...], rng: random.Random) -> bool:
        """Write the steps; True when the body may be terminated normally afterwards."""
        for step in steps:
            if self.server.stopping.is_set():
                self.close_connection = True
                return False
            if step.kind == "frame":
                self._write_frame(step.data, rng)
            elif step.kind == "raw":
                self._chunk(step.data)
            elif step.kind == "sleep":
                if self._wait(step.seconds):
                    self.close_connection = True
                    return False
            elif step.kind == "reset":
                self._reset()
                return False
            elif step.kind == "keep_open":
                self._hold_open(step.seconds)
                return False
            else:  # close: drop the connection mid-body
                self.close_connection = True
                return False
        return True

    def _write_frame(self, frame: bytes, rng: random.Random) -> None:
        if len(frame) > 1 and rng.random() < self.server.split_frames:
            cut = rng.randint(1, len(frame) - 1)
            self._chunk(frame[:cut])
            self._chunk(frame[cut:])
        else:
            self._chunk(frame)

    def _reset(self) -> None:
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _hold_open(self, timeout: float) -> None:
        """Keep the connection open, body unterminated, until the client closes or timeout."""
        self.close_connection = True
        deadline = time.monotonic() + timeout
        while not self.server.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], _POLL)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client hung up
                except OSError:
                    return
                return  # the client sent something new: we cannot answer it on this body
