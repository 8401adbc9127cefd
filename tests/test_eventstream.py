"""Tests of the sans-I/O event-stream codec: vectors, round trips, botocore parity, errors, fuzz."""

from __future__ import annotations

import itertools
import struct
import tracemalloc
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_lc.errors import EventStreamError, KiroProtocolError
from kiro_lc.eventstream import (
    MAX_PAYLOAD_LENGTH,
    EventStreamDecoder,
    EventStreamMessage,
    HeaderValue,
    encode_event,
    encode_exception,
    encode_message,
)

# kiro-protocol.md §5.1 test vectors (both verified there with botocore).
EVENT_VECTOR = bytes.fromhex(
    "0000007f0000005c7c7db5a80b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e74"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d7479706507"
    "00056576656e747b22636f6e74656e74223a2248656c6c6f227d9b5d0635"
)
EXCEPTION_VECTOR = bytes.fromhex(
    "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700135468726f74746c696e67457863657074696f6e"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009"
    "657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c20706c6561736520776169"
    "74206265666f726520747279696e6720616761696e2e227d4207aae0"
)
EVENT_HEADERS = {
    ":event-type": "assistantResponseEvent",
    ":content-type": "application/json",
    ":message-type": "event",
}
EXCEPTION_HEADERS = {
    ":exception-type": "ThrottlingException",
    ":content-type": "application/json",
    ":message-type": "exception",
}
EXCEPTION_PAYLOAD = b'{"message":"Too many requests, please wait before trying again."}'


# ---------------------------------------------------------------------------------------------
# Helpers: an independent frame builder, so malformed frames can carry valid CRCs
# ---------------------------------------------------------------------------------------------


def raw_frame(
    block: bytes, payload: bytes = b"{}", *, total: int | None = None, hlen: int | None = None
) -> bytes:
    """A frame with valid CRCs around any header block (and any declared lengths)."""
    total = 16 + len(block) + len(payload) if total is None else total
    lengths = struct.pack("!II", total, len(block) if hlen is None else hlen)
    body = lengths + struct.pack("!I", zlib.crc32(lengths)) + block + payload
    return body + struct.pack("!I", zlib.crc32(body))


def header(name: bytes, code: int, value: bytes = b"") -> bytes:
    return bytes([len(name)]) + name + bytes([code]) + value


def prelude(total: int, hlen: int) -> bytes:
    lengths = struct.pack("!II", total, hlen)
    return lengths + struct.pack("!I", zlib.crc32(lengths))


def decode_all(stream: bytes, cuts: list[int] | None = None) -> list[EventStreamMessage]:
    decoder = EventStreamDecoder()
    bounds = [0, *sorted(set(cuts or [])), len(stream)]
    out: list[EventStreamMessage] = []
    for start, stop in itertools.pairwise(bounds):
        out += decoder.feed(stream[start:stop])
    assert not decoder.has_partial_frame
    assert decoder.bytes_consumed == len(stream)
    return out


def feed_in_pieces(decoder: EventStreamDecoder, data: bytes, size: int) -> None:
    for i in range(0, len(data), size):
        assert decoder.feed(data[i : i + size]) == []


def typed(headers: dict[str, object]) -> dict[str, tuple[str, object]]:
    """Headers with each value's type, so True and 1 do not compare equal."""
    return {name: (type(value).__name__, value) for name, value in headers.items()}


def botocore_decode(stream: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(stream)
    return [(dict(m.headers), bytes(m.payload)) for m in buffer]


def expect_error(stream: bytes, *, offset: int, match: str) -> EventStreamError:
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match=match) as info:
        decoder.feed(stream)
    assert info.value.offset == offset
    assert f"offset {offset}" in str(info.value)
    return info.value


# ---------------------------------------------------------------------------------------------
# Test vectors and the message API
# ---------------------------------------------------------------------------------------------


def test_event_vector_decodes() -> None:
    [msg] = EventStreamDecoder().feed(EVENT_VECTOR)
    assert msg.headers == EVENT_HEADERS
    assert list(msg.headers) == list(EVENT_HEADERS)
    assert msg.payload == b'{"content":"Hello"}'
    assert (msg.event_type, msg.content_type, msg.message_type) == tuple(EVENT_HEADERS.values())
    assert msg.exception_type is None
    assert msg.error_code is None


def test_exception_vector_decodes() -> None:
    [msg] = EventStreamDecoder().feed(EXCEPTION_VECTOR)
    assert msg.headers == EXCEPTION_HEADERS
    assert msg.payload == EXCEPTION_PAYLOAD
    assert msg.message_type == "exception"
    assert msg.exception_type == "ThrottlingException"
    assert msg.event_type is None


def test_vectors_fed_byte_by_byte() -> None:
    stream = EVENT_VECTOR + EXCEPTION_VECTOR
    decoder = EventStreamDecoder()
    out: list[EventStreamMessage] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
        boundary = i + 1 in (len(EVENT_VECTOR), len(stream))
        assert decoder.has_partial_frame is not boundary
    assert [m.headers for m in out] == [EVENT_HEADERS, EXCEPTION_HEADERS]
    assert decoder.bytes_consumed == len(stream)


def test_encoders_reproduce_the_vectors() -> None:
    assert encode_event("assistantResponseEvent", b'{"content":"Hello"}') == EVENT_VECTOR
    assert encode_exception("ThrottlingException", EXCEPTION_PAYLOAD) == EXCEPTION_VECTOR
    assert encode_message(EVENT_HEADERS, b'{"content":"Hello"}') == EVENT_VECTOR


def test_encode_event_options() -> None:
    frame = encode_event("x", b"", message_type="error", content_type="text/plain")
    [msg] = EventStreamDecoder().feed(frame)
    assert msg.headers == {
        ":event-type": "x",
        ":content-type": "text/plain",
        ":message-type": "error",
    }
    assert msg.payload == b""


def test_string_properties_ignore_other_types() -> None:
    msg = EventStreamMessage({":message-type": b"event", ":error-code": "Boom"}, b"")
    assert msg.message_type is None
    assert msg.error_code == "Boom"


def test_repr_truncates_long_payloads() -> None:
    msg = EventStreamMessage({":event-type": "x"}, b"a" * 5000)
    text = repr(msg)
    assert "':event-type': 'x'" in text
    assert "(5000 bytes)" in text
    assert len(text) < 400
    assert repr(EventStreamMessage({}, b"hi")) == "EventStreamMessage(headers={}, payload=b'hi')"


def test_messages_compare_by_value() -> None:
    assert EventStreamMessage({"a": 1}, b"x") == EventStreamMessage({"a": 1}, b"x")
    assert EventStreamMessage({"a": 1}, b"x") != EventStreamMessage({"a": 1}, b"y")


def test_headers_are_private_copies() -> None:
    decoder = EventStreamDecoder()
    first, second = decoder.feed(EVENT_VECTOR * 2)
    first.headers[":event-type"] = "tampered"
    [third] = decoder.feed(EVENT_VECTOR)
    assert second.headers == third.headers == EVENT_HEADERS


def test_same_length_header_blocks_are_not_confused() -> None:
    # Both blocks are 22 bytes long: the per-length cache must compare the bytes.
    a = encode_message({"k": "aaaaaaaaaaaaaaaaa"}, b"1")
    b = encode_message({"k": "bbbbbbbbbbbbbbbbb"}, b"2")
    c = encode_message({"j": "aaaaaaaaaaaaaaaaa"}, b"3")
    out = decode_all(a + b + a + c + a)
    assert [m.headers for m in out] == [
        {"k": "a" * 17},
        {"k": "b" * 17},
        {"k": "a" * 17},
        {"j": "a" * 17},
        {"k": "a" * 17},
    ]


def test_feed_copies_mutable_buffers() -> None:
    data = bytearray(EVENT_VECTOR[:50])
    decoder = EventStreamDecoder()
    assert decoder.feed(data) == []
    data[:] = b"\0" * 50
    assert decoder.feed(memoryview(EVENT_VECTOR[50:]))[0].headers == EVENT_HEADERS


def test_empty_feeds_are_harmless() -> None:
    decoder = EventStreamDecoder()
    states = []
    for data in (b"", EVENT_VECTOR[:5], b"", EVENT_VECTOR[5:], b""):
        states.append((len(decoder.feed(data)), decoder.has_partial_frame))
    assert states == [(0, False), (0, True), (0, True), (1, False), (0, False)]


# ---------------------------------------------------------------------------------------------
# All ten header types, encoding rules
# ---------------------------------------------------------------------------------------------

ALL_TYPES: dict[str, object] = {
    "true": True,
    "false": False,
    "byte": HeaderValue(2, -128),
    "short": HeaderValue(3, -32768),
    "int": 2**31 - 1,
    "long": 2**31,
    "bytes": b"\x00\xff",
    "string": "héllo ✓",
    "timestamp": HeaderValue(8, 1_760_000_000_123),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}
ALL_TYPES_DECODED: dict[str, object] = {
    "true": True,
    "false": False,
    "byte": -128,
    "short": -32768,
    "int": 2**31 - 1,
    "long": 2**31,
    "bytes": b"\x00\xff",
    "string": "héllo ✓",
    "timestamp": 1_760_000_000_123,
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678").bytes,
}


def test_all_ten_header_types_round_trip_and_match_botocore() -> None:
    frame = encode_message(ALL_TYPES, b"payload")
    [msg] = EventStreamDecoder().feed(frame)
    assert typed(msg.headers) == typed(ALL_TYPES_DECODED)
    [(boto_headers, boto_payload)] = botocore_decode(frame)
    assert typed(boto_headers) == typed(ALL_TYPES_DECODED)
    assert boto_payload == b"payload"


def test_type_codes_chosen_by_the_encoder() -> None:
    def code_of(value: object) -> int:
        frame = encode_message({"h": value}, b"")
        return frame[12 + 2]  # prelude, name length, name "h", then the type byte

    assert [code_of(v) for v in (True, False, 0, -(2**31), 2**31, -(2**31) - 1)] == [
        0,
        1,
        4,
        4,
        5,
        5,
    ]
    assert [code_of(v) for v in (b"", "", uuid.uuid4(), HeaderValue(9, b"x" * 16))] == [6, 7, 9, 9]
    assert code_of(HeaderValue(8, 0)) == 8


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"": "x"}, ValueError),
        ({"n" * 256: "x"}, ValueError),
        ({"h": 2**63}, ValueError),
        ({"h": HeaderValue(2, 128)}, ValueError),
        ({"h": HeaderValue(9, b"short")}, ValueError),
        ({"h": HeaderValue(6, 5)}, ValueError),
        ({"h": HeaderValue(7, b"not str")}, ValueError),
        ({"h": HeaderValue(10, b"")}, ValueError),
        ({"h": "x" * 65536}, ValueError),
        ({"h": 1.5}, TypeError),
        ({"h": None}, TypeError),
    ],
)
def test_encoder_rejects_what_the_format_cannot_carry(
    headers: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        encode_message(headers, b"")


def test_encoder_rejects_oversized_payload() -> None:
    with pytest.raises(ValueError, match="payload"):
        encode_message({}, bytes(MAX_PAYLOAD_LENGTH + 1))


# ---------------------------------------------------------------------------------------------
# Property tests: round trips under arbitrary splits, botocore parity
# ---------------------------------------------------------------------------------------------

INT64 = st.integers(-(2**63), 2**63 - 1)
VALUES = st.one_of(
    st.booleans().map(lambda v: (v, v)),
    st.integers(-128, 127).map(lambda v: (HeaderValue(2, v), v)),
    st.integers(-(2**15), 2**15 - 1).map(lambda v: (HeaderValue(3, v), v)),
    INT64.map(lambda v: (v, v)),
    INT64.map(lambda v: (HeaderValue(5, v), v)),
    st.binary(max_size=40).map(lambda v: (v, v)),
    st.text(max_size=30).map(lambda v: (v, v)),
    INT64.map(lambda v: (HeaderValue(8, v), v)),
    st.uuids().map(lambda v: (v, v.bytes)),
    st.binary(min_size=16, max_size=16).map(lambda v: (HeaderValue(9, v), v)),
)
HEADERS = st.dictionaries(st.text(min_size=1, max_size=12), VALUES, max_size=6)
FRAMES = st.lists(st.tuples(HEADERS, st.binary(max_size=300)), min_size=1, max_size=6)


Frames = list[tuple[dict[str, tuple[object, object]], bytes]]
Mutations = list[tuple[str, int, int | bytes | None]]


def build(frames: Frames) -> tuple[bytes, list[int]]:
    """Encode ``frames``; return the stream and the offsets where frames end."""
    stream, ends = b"", []
    for headers, payload in frames:
        stream += encode_message({k: v[0] for k, v in headers.items()}, payload)
        ends.append(len(stream))
    return stream, ends


def expected(frames: Frames) -> list[tuple[dict[str, tuple[str, object]], bytes]]:
    return [(typed({k: v[1] for k, v in h.items()}), p) for h, p in frames]


@settings(max_examples=150, deadline=None)
@given(frames=FRAMES, data=st.data())
def test_round_trip_with_random_splits(frames: Frames, data: st.DataObject) -> None:
    stream, ends = build(frames)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=25))))
    decoder = EventStreamDecoder()
    out: list[EventStreamMessage] = []
    for start, stop in itertools.pairwise([0, *cuts, len(stream)]):
        out += decoder.feed(stream[start:stop])
        done = [end for end in ends if end <= stop]
        assert len(out) == len(done)
        assert decoder.bytes_consumed == (done[-1] if done else 0)
        assert decoder.has_partial_frame is (decoder.bytes_consumed != stop)
    assert not decoder.has_partial_frame
    assert [(typed(m.headers), m.payload) for m in out] == expected(frames)


@settings(max_examples=100, deadline=None)
@given(frames=FRAMES)
def test_botocore_decodes_our_frames_identically(frames: Frames) -> None:
    stream, _ = build(frames)
    boto = [(typed(h), p) for h, p in botocore_decode(stream)]
    assert boto == expected(frames)
    ours = decode_all(stream)
    assert [(typed(m.headers), m.payload) for m in ours] == boto


# ---------------------------------------------------------------------------------------------
# Large frames: assembled from pieces without quadratic copying
# ---------------------------------------------------------------------------------------------

BIG_A = encode_message({":event-type": "big", "n": 1}, bytes(range(256)) * 1500)  # ~384 KB
BIG_B = encode_message({"blk": "b" * 3000}, b"\x07" * 700_000)  # 3 KB header block
BIG_STREAM = EVENT_VECTOR + BIG_A + EVENT_VECTOR + BIG_B + BIG_A + EXCEPTION_VECTOR
BIG_ENDS = [
    len(EVENT_VECTOR),
    len(EVENT_VECTOR) + len(BIG_A),
    2 * len(EVENT_VECTOR) + len(BIG_A),
    2 * len(EVENT_VECTOR) + len(BIG_A) + len(BIG_B),
    2 * len(EVENT_VECTOR) + 2 * len(BIG_A) + len(BIG_B),
    len(BIG_STREAM),
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.integers(0, len(BIG_STREAM)), max_size=40),
    near=st.lists(st.sampled_from(BIG_ENDS).flatmap(lambda e: st.integers(e - 20, e)), max_size=8),
)
def test_large_frames_in_random_pieces(cuts: list[int], near: list[int]) -> None:
    out = decode_all(BIG_STREAM, cuts + near)
    assert out == decode_all(BIG_STREAM)
    assert [len(m.payload) for m in out] == [19, 384_000, 19, 700_000, 384_000, 65]
    assert out[1].headers == {":event-type": "big", "n": 1}
    assert out[1].payload == bytes(range(256)) * 1500
    assert out[3].headers == {"blk": "b" * 3000}


def test_large_frame_in_network_sized_reads() -> None:
    big = encode_event("blob", bytes(range(256)) * 4096)  # 1 MiB payload
    stream = big + EVENT_VECTOR + big
    out = decode_all(stream, list(range(0, len(stream), 4096)))
    blob = bytes(range(256)) * 4096
    assert [m.payload for m in out] == [blob, b'{"content":"Hello"}', blob]


def test_large_frame_in_tiny_reads_is_linear_and_bounded() -> None:
    big = encode_event("blob", b"z" * 300_000)
    decoder = EventStreamDecoder()
    tracemalloc.start()
    try:
        for i in range(0, len(big) - 7, 7):
            assert decoder.feed(big[i : i + 7]) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(big)  # tiny reads are coalesced, not kept as one object each
    assert decoder.has_partial_frame
    [msg] = decoder.feed(big[i + 7 :])
    assert msg.payload == b"z" * 300_000


def test_max_size_prelude_then_single_bytes() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(prelude(16 + MAX_PAYLOAD_LENGTH, 0)) == []
    for _ in range(100_000):
        decoder.feed(b"x")
    assert decoder.has_partial_frame
    assert decoder.bytes_consumed == 0


def test_max_size_frame_round_trips() -> None:
    frame = encode_message({}, b"m" * MAX_PAYLOAD_LENGTH)
    out = decode_all(frame, list(range(0, len(frame), 65536)))
    assert len(out[0].payload) == MAX_PAYLOAD_LENGTH


# ---------------------------------------------------------------------------------------------
# Malformed streams: each error names the frame's stream offset
# ---------------------------------------------------------------------------------------------

P = len(EVENT_VECTOR)  # bad frames follow one good frame, so offsets are not 0


def corrupt(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_corrupted_prelude_crc() -> None:
    error = expect_error(EVENT_VECTOR + corrupt(EVENT_VECTOR, 9), offset=P, match="prelude CRC")
    assert isinstance(error, KiroProtocolError)
    assert "retry" in str(error)


def test_corrupted_length_is_caught_by_the_prelude_crc() -> None:
    expect_error(EVENT_VECTOR + corrupt(EVENT_VECTOR, 3), offset=P, match="prelude CRC")


@pytest.mark.parametrize("index", [20, 100, len(EVENT_VECTOR) - 5, len(EVENT_VECTOR) - 1])
def test_corrupted_message_crc(index: int) -> None:
    expect_error(EVENT_VECTOR + corrupt(EVENT_VECTOR, index), offset=P, match="message CRC")


def test_corrupted_large_frame_crc() -> None:
    bad = corrupt(BIG_A, 200_000)
    decoder = EventStreamDecoder()
    decoder.feed(EVENT_VECTOR)
    with pytest.raises(EventStreamError, match="message CRC") as info:
        feed_in_pieces(decoder, bad, 4096)
    assert info.value.offset == P


def test_truncated_frame_is_partial_not_an_error() -> None:
    decoder = EventStreamDecoder()
    assert len(decoder.feed(EVENT_VECTOR + EVENT_VECTOR[:-1])) == 1
    assert decoder.has_partial_frame
    assert decoder.bytes_consumed == P
    assert decoder.feed(b"") == []
    assert decoder.has_partial_frame


@pytest.mark.parametrize(
    ("total", "hlen", "match"),
    [
        (15, 0, "below the 16-byte minimum"),
        (0, 0, "below the 16-byte minimum"),
        (100, 200, "does not fit"),
        (200_000, 140_000, "headers length 140000 exceeds"),
        (2**32 - 1, 10, "payload length .* exceeds"),
        (16 + MAX_PAYLOAD_LENGTH + 1, 0, "payload length 25165825"),
    ],
)
def test_impossible_lengths_rejected_from_the_prelude(total: int, hlen: int, match: str) -> None:
    # Only the 12-byte prelude is fed: lengths are judged before anything is buffered.
    expect_error(EVENT_VECTOR + prelude(total, hlen), offset=P, match=match)


def test_largest_allowed_lengths_wait_for_more_data() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(prelude(16 + MAX_PAYLOAD_LENGTH + 128 * 1024, 128 * 1024)) == []
    assert decoder.has_partial_frame


GOOD = header(b":event-type", 7, b"\x00\x01x")


@pytest.mark.parametrize(
    ("block", "match"),
    [
        (GOOD + header(b"weird", 10), "frame byte 28: unknown value type 10"),
        (GOOD + header(b"weird", 255, b"\0" * 8), "unknown value type 255"),
        (GOOD + GOOD, "frame byte 28: duplicate header ':event-type'"),
        (header(b"", 7, b"\x00\x01x"), "frame byte 12: empty header name"),
        (b"\x05abc", "runs past the end of the header block"),
        (b"\x03abc", "runs past the end of the header block"),
        (header(b"n", 7, b"\x00\x05abc"), "string value of 'n' runs past"),
        (header(b"n", 6, b"\x00"), "bytes length of 'n' runs past"),
        (header(b"n", 5, b"\0" * 7), "int64 value of 'n' runs past"),
        (header(b"n", 8, b"\0" * 3), "timestamp value of 'n' runs past"),
        (header(b"n", 2), "int8 value of 'n' runs past"),
        (header(b"n", 9, b"\0" * 15), "uuid value of 'n' runs past"),
        (header(b"\xff\xfe", 0), "header name is not valid UTF-8"),
        (header(b"n", 7, b"\x00\x02\xc3\x28"), "string value of 'n' is not valid UTF-8"),
        (header(b"n", 7, b"\x00\x03\xed\xa0\x80"), "not valid UTF-8"),  # a lone surrogate
    ],
)
def test_bad_header_blocks(block: bytes, match: str) -> None:
    expect_error(EVENT_VECTOR + raw_frame(block), offset=P, match=match)


def test_bad_header_block_in_a_large_frame() -> None:
    frame = raw_frame(GOOD + GOOD, b"p" * 400_000)
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match="duplicate header") as info:
        feed_in_pieces(decoder, frame, 8192)
    assert info.value.offset == 0


def test_decoder_stays_failed() -> None:
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError):
        decoder.feed(EVENT_VECTOR + corrupt(EVENT_VECTOR, 50))
    for data in (EVENT_VECTOR, b"", EVENT_VECTOR * 100):
        with pytest.raises(EventStreamError, match=r"already failed.*message CRC") as info:
            decoder.feed(data)
        assert info.value.offset == P


def test_decoder_stays_failed_while_collecting_a_large_frame() -> None:
    decoder = EventStreamDecoder()
    decoder.feed(BIG_A[:100_000])
    with pytest.raises(EventStreamError):
        decoder.feed(corrupt(BIG_A, 200_000)[100_000:])
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.feed(BIG_A[:8192])


# ---------------------------------------------------------------------------------------------
# Fuzz: mangled streams and random header blocks raise EventStreamError or decode; nothing else
# ---------------------------------------------------------------------------------------------

FUZZ_BASE = (
    EVENT_VECTOR
    + encode_message(ALL_TYPES, b'{"x": 1}')
    + encode_event("toolUseEvent", b'{"name":"f","toolUseId":"t","input":"{}","stop":true}')
    + EXCEPTION_VECTOR
)
MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.none()),
    st.tuples(st.just("extend"), st.just(0), st.binary(min_size=1, max_size=40)),
)


def mutate(stream: bytes, mutations: Mutations) -> bytes:
    data = bytearray(stream)
    for kind, where, arg in mutations:
        at = where % (len(data) + 1)
        if kind == "flip" and at < len(data) and isinstance(arg, int):
            data[at] ^= arg
        elif kind == "cut" and isinstance(arg, int):
            del data[at : at + arg]
        elif kind == "insert" and isinstance(arg, bytes):
            data[at:at] = arg
        elif kind == "truncate":
            del data[at:]
        elif kind == "extend" and isinstance(arg, bytes):
            data += arg
    return bytes(data)


def feed_checked(stream: bytes, cuts: list[int]) -> list[EventStreamMessage] | None:
    """Feed ``stream`` split at ``cuts``; only EventStreamError may escape (returns None)."""
    decoder = EventStreamDecoder()
    out: list[EventStreamMessage] = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    error: EventStreamError | None = None
    try:
        for start, stop in itertools.pairwise(bounds):
            out += decoder.feed(stream[start:stop])
    except EventStreamError as exc:
        error = exc
    if error is None:
        return out
    assert error.offset is not None
    assert 0 <= error.offset <= len(stream)
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.feed(b"\0" * 16)
    return None


@settings(max_examples=400, deadline=None)
@given(
    mutations=st.lists(MUTATION, min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, len(FUZZ_BASE) + 100), max_size=10),
)
def test_fuzz_mangled_streams(
    mutations: list[tuple[str, int, int | bytes | None]], cuts: list[int]
) -> None:
    feed_checked(mutate(FUZZ_BASE, mutations), cuts)


@settings(max_examples=400, deadline=None)
@given(block=st.binary(max_size=80), payload=st.binary(max_size=20))
def test_fuzz_header_blocks_with_valid_crcs(block: bytes, payload: bytes) -> None:
    frame = raw_frame(block, payload)
    out = feed_checked(frame, [])
    if out is not None:  # whatever we accept, botocore decodes the same way
        [msg] = out
        [(boto_headers, boto_payload)] = botocore_decode(frame)
        assert typed(msg.headers) == typed(boto_headers)
        assert msg.payload == boto_payload == payload
