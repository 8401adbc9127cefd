"""Sans-I/O codec for the AWS binary event stream that carries every Kiro response token.

Wire format (kiro-protocol.md §5.1; botocore ``eventstream.py`` is the reference)::

    uint32 total_length | uint32 headers_length | uint32 prelude_crc = CRC-32 of bytes [0, 8)
    headers (headers_length bytes) | payload | uint32 message_crc = CRC-32 of [0, total_length-4)

:class:`EventStreamDecoder` is fed bytes in any split and returns whole
:class:`EventStreamMessage` objects; it verifies both CRCs, checks lengths from the prelude before
buffering a frame, and raises :class:`~kiro_lc.errors.EventStreamError` (with the byte offset)
on anything malformed. :func:`encode_message`, :func:`encode_event` and :func:`encode_exception`
build frames (used by the emulator and the tests).

The decoder is on the hot path of every token, hence the shape of ``_scan``: one loop over
frame offsets per feed, ``struct.unpack_from`` on the buffer, CRCs over memoryviews, parsed header
blocks cached (Kiro repeats the same three headers on every frame), exactly one copy of each
payload. A frame that arrives in many reads is kept as a list of pieces and assembled once, so a
1 MiB frame in 4 KiB reads (or a 24 MiB one in 1-byte reads) costs linear time.
``benchmarks/bench_eventstream.py`` measures it against botocore and raw CRC-32.
"""

from __future__ import annotations

import reprlib
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from functools import lru_cache
from itertools import accumulate
from struct import Struct
from struct import error as StructError
from typing import NamedTuple
from zlib import crc32

from kiro_lc.errors import EventStreamError

__all__ = [
    "EventStreamDecoder",
    "EventStreamMessage",
    "HeaderValue",
    "encode_event",
    "encode_exception",
    "encode_message",
]

MAX_HEADERS_LENGTH = 128 * 1024
"""Largest header block accepted (botocore's ``_MAX_HEADERS_LENGTH``)."""
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
"""Largest payload accepted (botocore's ``_MAX_PAYLOAD_LENGTH``)."""

_PRELUDE = Struct("!III")
_LENGTHS = Struct("!II")
_U32 = Struct("!I")
_U16 = Struct("!H")
_PRELUDE_LEN = 12  # the hot loop in _scan spells 12 and 16 (= prelude + message CRC) literally
_OVERHEAD = 16
# Fixed-size header values by type code. 8 (timestamp) is a raw int64 of epoch milliseconds,
# returned as int like botocore does.
_FIXED: dict[int, Struct] = {2: Struct("!b"), 3: Struct("!h"), 4: Struct("!i"), 5: Struct("!q")}
_FIXED[8] = _FIXED[5]
_TYPE_NAMES = {
    0: "bool true",
    1: "bool false",
    2: "int8",
    3: "int16",
    4: "int32",
    5: "int64",
    6: "bytes",
    7: "string",
    8: "timestamp",
    9: "uuid",
}

_LARGE_FRAME = 256 * 1024  # frames above this are assembled from pieces without a full join
_SMALL_PIECE = 1024  # reads smaller than this are coalesced while a frame is collected ...
_COALESCE_LIMIT = 64 * 1024  # ... into bytearrays of up to this size
_CACHE_MAX_ENTRIES = 64
_CACHE_MAX_BLOCK = 1024


class EventStreamMessage:
    """One decoded frame: ``headers`` (name → str, bytes, bool or int) and the raw ``payload``.

    Header values: bool (types 0/1), int (2-5, and 8 = timestamp in epoch milliseconds), bytes
    (6, and 9 = the 16 raw uuid bytes), str (7) — the same values botocore returns.
    """

    __slots__ = ("headers", "payload")

    def __init__(self, headers: dict[str, object], payload: bytes) -> None:
        self.headers = headers
        self.payload = payload

    def _str_header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str | None:
        """``:message-type``: ``"event"``, ``"exception"`` or ``"error"``."""
        return self._str_header(":message-type")

    @property
    def event_type(self) -> str | None:
        """``:event-type``, e.g. ``"assistantResponseEvent"``."""
        return self._str_header(":event-type")

    @property
    def exception_type(self) -> str | None:
        """``:exception-type`` of an exception frame, e.g. ``"ThrottlingException"``."""
        return self._str_header(":exception-type")

    @property
    def content_type(self) -> str | None:
        """``:content-type``, normally ``"application/json"``."""
        return self._str_header(":content-type")

    @property
    def error_code(self) -> str | None:
        """``:error-code`` of an error frame."""
        return self._str_header(":error-code")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventStreamMessage):
            return NotImplemented
        return self.headers == other.headers and self.payload == other.payload

    __hash__ = None  # type: ignore[assignment]  # mutable headers

    def __repr__(self) -> str:
        payload = repr(self.payload[:200])
        if len(self.payload) > 200:
            payload += f"... ({len(self.payload)} bytes)"
        return f"EventStreamMessage(headers={self.headers!r}, payload={payload})"


class EventStreamDecoder:
    """Incremental event-stream decoder: ``feed(bytes)`` returns the frames completed so far.

    Accepts any split of the stream. Only the unconsumed tail is kept. After an
    :class:`~kiro_lc.errors.EventStreamError` the decoder stays failed (every later ``feed``
    raises) because a corrupted stream cannot be resynchronised.
    """

    __slots__ = ("_base", "_cache", "_error", "_have", "_need", "_pieces")

    def __init__(self) -> None:
        self._pieces: list[bytes | bytearray] = []  # unconsumed bytes, in order
        self._have = 0  # total length of _pieces
        self._need = 0  # bytes needed before decoding can progress (0: nothing buffered)
        self._base = 0  # stream offset of the first unconsumed byte
        # header-block length -> (block, parsed headers) of the last block seen with that length
        self._cache: dict[int, tuple[bytes, dict[str, object]]] = {}
        self._error: EventStreamError | None = None

    @property
    def has_partial_frame(self) -> bool:
        """True while bytes of an unfinished frame are buffered (EOF now means truncation)."""
        return self._have > 0

    @property
    def bytes_consumed(self) -> int:
        """Stream offset of the first byte not yet decoded into a message."""
        return self._base

    def feed(self, data: bytes | bytearray | memoryview) -> list[EventStreamMessage]:
        """Add ``data`` and return every message it completes, in stream order.

        ``bytes`` are kept by reference; other buffers are copied first. Raises
        :class:`~kiro_lc.errors.EventStreamError` if any frame is malformed; messages that
        preceded the bad frame in the same call are not returned.
        """
        need = self._need  # reset to 0 on failure, so a failed decoder skips the fast path
        if need and type(data) is bytes and len(data) >= _SMALL_PIECE:
            self._pieces.append(data)  # fast path: another read of a frame being collected
            self._have += len(data)
        else:
            if self._error is not None:
                first = self._error
                raise EventStreamError(
                    "This event stream already failed and cannot be resynchronised; "
                    f"start a new request. The first error was: {first.message}",
                    offset=first.offset,
                )
            if not isinstance(data, bytes):
                data = bytes(data)  # a copy: callers may reuse their buffer
            if not need:
                return self._one_frame(data) or self._scan(data, [])
            self._coalesce(data)
        if self._have < need:
            return []
        return self._complete()

    def _fail(self, offset: int, detail: str) -> EventStreamError:
        """Record a fatal error (the decoder stays failed) and return it for raising."""
        self._error = _corrupt(offset, detail)
        self._pieces, self._have, self._need = [], 0, 0
        return self._error

    def _coalesce(self, data: bytes) -> None:
        """Collect a tiny read into a bytearray piece (bounds the overhead of 1-byte feeds)."""
        if not data:
            return
        self._have += len(data)
        last = self._pieces[-1]
        if isinstance(last, bytearray) and len(last) < _COALESCE_LIMIT:
            last += data
        else:
            self._pieces.append(bytearray(data))

    def _complete(self) -> list[EventStreamMessage]:
        pieces, need = self._pieces, self._need
        self._pieces, self._have, self._need = [], 0, 0
        out: list[EventStreamMessage] = []
        if need > _LARGE_FRAME:
            rest = self._decode_assembled(pieces, need, out)
        else:
            rest = b"".join(pieces)
        return self._scan(rest, out)

    def _one_frame(self, buf: bytes) -> list[EventStreamMessage] | None:
        """Fast path for the usual network read: exactly one valid frame whose header block is
        cached. ``None`` sends anything else (and every error) through :meth:`_scan`."""
        n = len(buf)
        if n < 16:
            return None
        total, hlen, pcrc = _PRELUDE.unpack_from(buf, 0)
        if (
            total != n
            or hlen > total - 16
            or total - hlen - 16 > MAX_PAYLOAD_LENGTH
            or crc32(buf[:8]) != pcrc
        ):
            return None
        pe = n - 4
        if crc32(buf[8:pe], pcrc) != _U32.unpack_from(buf, pe)[0]:
            return None
        entry = self._cache.get(hlen)
        if entry is None or not buf.startswith(entry[0], 12):
            return None
        msg = object.__new__(EventStreamMessage)
        msg.headers = entry[1].copy()
        msg.payload = buf[12 + hlen : pe]
        self._base += n
        return [msg]

    def _scan(self, buf: bytes, out: list[EventStreamMessage]) -> list[EventStreamMessage]:
        """Decode every complete frame of ``buf`` into ``out``; keep the tail for later.

        This loop runs once per token, hence the locals and the inlined checks.
        """
        n = len(buf)
        mv = memoryview(buf)
        pos = total = 0
        base = self._base
        cache = self._cache
        unpack_prelude = _PRELUDE.unpack_from
        unpack_u32 = _U32.unpack_from
        new = object.__new__
        message = EventStreamMessage
        append = out.append
        while pos + 12 <= n:
            total, hlen, pcrc = unpack_prelude(buf, pos)
            if (
                crc32(buf[pos : pos + 8]) != pcrc
                or hlen > MAX_HEADERS_LENGTH
                or total < hlen + 16
                or total - hlen - 16 > MAX_PAYLOAD_LENGTH
            ):
                raise self._fail(base + pos, _prelude_problem(buf[pos : pos + 12]))
            end = pos + total
            if end > n:
                break
            pe = end - 4
            crc = crc32(mv[pos + 8 : pe], pcrc)
            if crc != unpack_u32(buf, pe)[0]:
                raise self._fail(base + pos, _crc_problem(unpack_u32(buf, pe)[0], crc))
            hstart = pos + 12
            entry = cache.get(hlen)
            if entry is None or not buf.startswith(entry[0], hstart):
                entry = self._parse_block(buf[hstart : hstart + hlen], base + pos)
            msg = new(message)  # skips the __init__ call
            msg.headers = entry[1].copy()  # callers may mutate it; the cached dict stays intact
            msg.payload = buf[hstart + hlen : pe]
            append(msg)
            pos = end
        self._base = base + pos
        if pos < n:
            self._pieces = [buf[pos:] if pos else buf]
            self._have = n - pos
            self._need = total if n - pos >= 12 else 12
        return out

    def _decode_assembled(
        self, pieces: list[bytes | bytearray], total: int, out: list[EventStreamMessage]
    ) -> bytes:
        """Decode the large frame spread over ``pieces`` (its prelude is already validated).

        Only the payload is copied (once); returns the bytes after the frame.
        """
        ends = list(accumulate(map(len, pieces)))
        _, hlen, pcrc = _PRELUDE.unpack_from(pieces[0], 0)
        hend = _PRELUDE_LEN + hlen
        pe = total - 4
        crc = pcrc
        for segment in _segments(pieces, ends, 8, pe):
            crc = crc32(segment, crc)
        (expected,) = _U32.unpack(b"".join(_segments(pieces, ends, pe, total)))
        if crc != expected:
            raise self._fail(self._base, _crc_problem(expected, crc))
        block = b"".join(_segments(pieces, ends, _PRELUDE_LEN, hend))
        entry = self._cache.get(hlen)
        if entry is None or entry[0] != block:
            entry = self._parse_block(block, self._base)
        # The small remainder is allocated before the big payload: the payload then lies at the
        # top of the heap and, once freed, is reused by the next one instead of being trimmed and
        # faulted in again (measured: 40 page faults per MiB frame otherwise).
        rest = b"".join(_segments(pieces, ends, total, ends[-1]))
        payload = b"".join(_segments(pieces, ends, hend, pe))
        out.append(EventStreamMessage(entry[1].copy(), payload))
        self._base += total
        return rest

    def _parse_block(self, block: bytes, frame_offset: int) -> tuple[bytes, dict[str, object]]:
        """Parse a header block and remember it as the last block of its length."""
        try:
            entry = (block, _parse_headers(block))
        except _BadHeader as exc:
            raise self._fail(frame_offset, str(exc)) from None
        if len(block) <= _CACHE_MAX_BLOCK:
            if len(self._cache) >= _CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[len(block)] = entry
        return entry


def _segments(
    pieces: list[bytes | bytearray], ends: list[int], start: int, stop: int
) -> list[bytes | bytearray | memoryview]:
    """The buffers covering stream bytes [start, stop) of ``pieces`` (``ends``: cumulative)."""
    if start >= stop:
        return []
    i = bisect_right(ends, start)
    j = bisect_left(ends, stop)
    first = memoryview(pieces[i])
    first_start = ends[i] - len(first)
    if i == j:
        return [first[start - first_start : stop - first_start]]
    last = memoryview(pieces[j])
    last_start = ends[j] - len(last)
    return [first[start - first_start :], *pieces[i + 1 : j], last[: stop - last_start]]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def _corrupt(offset: int, detail: str) -> EventStreamError:
    return EventStreamError(
        f"Kiro sent a malformed event-stream frame (frame starts at byte offset {offset} of the "
        f"response): {detail}. The response is corrupted or is not an AWS event stream; retry "
        "the request, and report a kiro-lc bug if it keeps happening.",
        offset=offset,
    )


def _prelude_problem(prelude: bytes) -> str:
    """Say what is wrong with a 12-byte prelude that failed the fast checks."""
    total, hlen, pcrc = _PRELUDE.unpack(prelude)
    computed = crc32(prelude[:8])
    if computed != pcrc:
        return (
            f"prelude CRC mismatch (frame bytes 8-11 say 0x{pcrc:08x}, "
            f"CRC-32 of bytes 0-7 is 0x{computed:08x})"
        )
    if total < _OVERHEAD:
        return f"total length {total} is below the {_OVERHEAD}-byte minimum"
    if hlen > MAX_HEADERS_LENGTH:
        return f"headers length {hlen} exceeds the {MAX_HEADERS_LENGTH}-byte limit"
    if total < hlen + _OVERHEAD:
        return f"headers length {hlen} does not fit in total length {total}"
    return (
        f"payload length {total - hlen - _OVERHEAD} (total length {total}) exceeds the "
        f"{MAX_PAYLOAD_LENGTH}-byte limit"
    )


def _crc_problem(expected: int, computed: int) -> str:
    return (
        f"message CRC mismatch (last 4 bytes of the frame say 0x{expected:08x}, "
        f"CRC-32 of the frame is 0x{computed:08x})"
    )


# ---------------------------------------------------------------------------------------------
# Header decoding
# ---------------------------------------------------------------------------------------------


class _BadHeader(Exception):
    """Internal: what is wrong with one header (wrapped into an EventStreamError)."""


def _parse_headers(block: bytes) -> dict[str, object]:
    """Parse a header block; errors name the header's byte offset within the frame."""
    headers: dict[str, object] = {}
    n = len(block)
    pos = 0
    while pos < n:
        try:
            name_end = pos + 1 + block[pos]
            if name_end == pos + 1:
                raise _BadHeader("empty header name")
            if name_end >= n:
                raise _BadHeader("name or value type runs past the end of the header block")
            try:
                name = block[pos + 1 : name_end].decode("utf-8")
            except UnicodeDecodeError:
                raise _BadHeader("header name is not valid UTF-8") from None
            if name in headers:
                raise _BadHeader(f"duplicate header {name!r}")
            headers[name], pos = _parse_value(block, name_end + 1, block[name_end], name)
        except _BadHeader as exc:
            raise _BadHeader(f"header at frame byte {_PRELUDE_LEN + pos}: {exc}") from None
    return headers


def _parse_value(block: bytes, pos: int, code: int, name: str) -> tuple[object, int]:
    """Decode the value of type ``code`` at ``block[pos]``; return it and the next offset."""
    if code == 0:
        return True, pos
    if code == 1:
        return False, pos
    n = len(block)
    fixed = _FIXED.get(code)
    if fixed is not None:
        end = pos + fixed.size
        if end > n:
            raise _BadHeader(f"{_TYPE_NAMES[code]} value of {name!r} runs past the header block")
        return fixed.unpack_from(block, pos)[0], end
    if code == 9:
        if pos + 16 > n:
            raise _BadHeader(f"uuid value of {name!r} runs past the header block")
        return block[pos : pos + 16], pos + 16
    if code not in (6, 7):
        raise _BadHeader(f"unknown value type {code} for header {name!r}")
    if pos + 2 > n:
        raise _BadHeader(f"{_TYPE_NAMES[code]} length of {name!r} runs past the header block")
    end = pos + 2 + _U16.unpack_from(block, pos)[0]
    if end > n:
        raise _BadHeader(f"{_TYPE_NAMES[code]} value of {name!r} runs past the header block")
    raw = block[pos + 2 : end]
    if code == 6:
        return raw, end
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError:
        raise _BadHeader(f"string value of {name!r} is not valid UTF-8") from None


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


class HeaderValue(NamedTuple):
    """A header value with an explicit wire type, for :func:`encode_message`.

    ``type_code`` 0/1: bool (value ignored); 2-5: int8/16/32/64; 6: bytes; 7: str;
    8: timestamp (int epoch milliseconds); 9: uuid (:class:`uuid.UUID` or 16 bytes).
    """

    type_code: int
    value: object = None


def encode_message(headers: Mapping[str, object], payload: bytes) -> bytes:
    """Encode one frame with valid CRCs.

    Value types: str → string (7), bytes → byte array (6), bool → 0/1, int → int32 (4) or int64
    (5) when out of int32 range, :class:`uuid.UUID` → uuid (9), :class:`HeaderValue` → its type.
    Raises ``ValueError``/``TypeError`` for headers or payloads the format cannot carry.
    """
    return _frame(_encode_headers(headers), payload)


def encode_event(
    event_type: str,
    payload: bytes,
    *,
    message_type: str = "event",
    content_type: str = "application/json",
) -> bytes:
    """Encode an event frame; headers ``:event-type``, ``:content-type``, ``:message-type``."""
    return _frame(_standard_block(":event-type", event_type, content_type, message_type), payload)


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    """Encode an exception frame (``:exception-type``, ``:content-type``, ``:message-type``)."""
    block = _standard_block(":exception-type", exception_type, "application/json", "exception")
    return _frame(block, payload)


@lru_cache(maxsize=256)
def _standard_block(type_header: str, type_value: str, content_type: str, message: str) -> bytes:
    return _encode_headers(
        {type_header: type_value, ":content-type": content_type, ":message-type": message}
    )


def _encode_headers(headers: Mapping[str, object]) -> bytes:
    return b"".join(_encode_header(name, value) for name, value in headers.items())


def _frame(block: bytes, payload: bytes) -> bytes:
    if len(block) > MAX_HEADERS_LENGTH:
        raise ValueError(f"header block of {len(block)} bytes exceeds {MAX_HEADERS_LENGTH}")
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_LENGTH}")
    lengths = _LENGTHS.pack(_OVERHEAD + len(block) + len(payload), len(block))
    prelude = lengths + _U32.pack(crc32(lengths))
    crc = crc32(payload, crc32(block, crc32(prelude)))
    return b"".join((prelude, block, payload, _U32.pack(crc)))


def _encode_header(name: str, value: object) -> bytes:
    raw_name = name.encode("utf-8")
    if not 1 <= len(raw_name) <= 255:
        raise ValueError(f"header name {name!r} must be 1-255 bytes of UTF-8")
    if isinstance(value, HeaderValue):
        code, value = value.type_code, value.value
    elif isinstance(value, bool):
        code = 0 if value else 1
    elif isinstance(value, int):
        code = 4 if -(2**31) <= value < 2**31 else 5
    elif isinstance(value, str):
        code = 7
    elif isinstance(value, (bytes, bytearray, memoryview)):
        code = 6
    elif isinstance(value, uuid.UUID):
        code = 9
    else:
        raise TypeError(f"header {name!r}: cannot encode a {type(value).__name__} value")
    return bytes((len(raw_name),)) + raw_name + bytes((code,)) + _encode_value(name, code, value)


def _encode_value(name: str, code: int, value: object) -> bytes:
    try:
        if code in (0, 1):
            return b""
        fixed = _FIXED.get(code)
        if fixed is not None:
            return fixed.pack(value)
        if code == 9:
            if isinstance(value, uuid.UUID):
                return value.bytes
            if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != 16:
                raise ValueError("a uuid is a uuid.UUID or 16 bytes")
            return bytes(value)
        if code == 6 and isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
        elif code == 7 and isinstance(value, str):
            raw = value.encode("utf-8")
        else:
            raise ValueError(f"unknown or mismatched header type {code}")
        if len(raw) > 0xFFFF:
            raise ValueError(f"{len(raw)} bytes exceed the 65535-byte value limit")
        return _U16.pack(len(raw)) + raw
    except (StructError, TypeError, ValueError) as exc:
        shown = reprlib.repr(value)
        raise ValueError(f"header {name!r}: cannot encode {shown} as type {code}: {exc}") from None
