"""Sans-I/O reader of one ``GenerateAssistantResponse`` body: bytes in, :data:`KiroEvent`s out.

Both transports feed it what httpx reads. It decodes frames (:class:`EventStreamDecoder`), parses
them (:func:`parse_event`), notices when the turn is complete so the transport can stop reading
a connection Kiro keeps open (kiro-protocol.md §5.4), and judges the end of the body.
"""

from __future__ import annotations

from kiro_lc.errormap import error_from_exception
from kiro_lc.errors import KiroAPIError, KiroConnectionError, KiroError
from kiro_lc.eventstream import EventStreamDecoder
from kiro_lc.protocol import KiroEvent, Metering, StreamException, ToolUseFragment, parse_event

__all__ = ["MAX_TOKENS_EXCEPTION", "StreamReader"]

MAX_TOKENS_EXCEPTION = "ContentLengthExceededException"
"""The one exception frame that is an answer (stop reason ``max_tokens``), not a failure."""


class StreamReader:
    """Turns the bytes of one response body into events.

    ``feed(data)`` returns the events completed by ``data``. When it meets an exception frame it
    returns the events before it and sets :attr:`error` (the mapped :class:`KiroError`), which
    the transport raises after handing those events on. A ``ContentLengthExceededException``
    frame is returned as a :class:`StreamException` event instead (the assembler turns it into
    stop reason ``max_tokens``).

    :attr:`turn_complete` becomes true when a ``meteringEvent`` (Kiro's tail frame) arrives after
    other events while no tool call is waiting for its ``stop: true``, or after an exception
    frame: the transport then stops reading rather than wait for an EOF that may never come.

    :meth:`finish` judges EOF. A partial frame means the body was cut: it raises
    :class:`KiroConnectionError`. A tool call still pending at EOF is *not* an error here: its
    fragments were already handed on, and the assembler reports it as an invalid tool call.
    """

    __slots__ = (
        "_decoder",
        "_model_id",
        "_pending_tools",
        "_saw_body",
        "error",
        "event_count",
        "turn_complete",
    )

    def __init__(self, *, model_id: str | None = None) -> None:
        self._decoder = EventStreamDecoder()
        self._model_id = model_id
        self._pending_tools: set[str] = set()
        self._saw_body = False
        self.error: KiroError | None = None
        self.event_count = 0
        self.turn_complete = False

    @property
    def bytes_consumed(self) -> int:
        """Bytes of the body decoded into events so far."""
        return self._decoder.bytes_consumed

    def feed(self, data: bytes) -> list[KiroEvent]:
        """The events ``data`` completes (raises :class:`~kiro_lc.errors.EventStreamError` on a
        malformed frame)."""
        if self.error is not None:
            return []
        events: list[KiroEvent] = []
        for message in self._decoder.feed(data):
            event = parse_event(message)
            if isinstance(event, StreamException):
                if event.exception_type != MAX_TOKENS_EXCEPTION:
                    self.error = error_from_exception(event, model_id=self._model_id)
                    break
                self.turn_complete = True
            elif isinstance(event, Metering):
                if self._saw_body and not self._pending_tools:
                    self.turn_complete = True
            else:
                self._saw_body = True
                if isinstance(event, ToolUseFragment):
                    self._track_tool(event)
            events.append(event)
        self.event_count += len(events)
        return events

    def _track_tool(self, fragment: ToolUseFragment) -> None:
        if fragment.stop:
            self._pending_tools.discard(fragment.tool_use_id)
        else:
            self._pending_tools.add(fragment.tool_use_id)

    def finish(self) -> None:
        """Call at EOF: raise if the body was cut mid-frame or carried nothing at all."""
        if self._decoder.has_partial_frame:
            raise KiroConnectionError(
                "Kiro's response was cut off mid-frame after "
                f"{self._decoder.bytes_consumed} bytes; the answer is incomplete. Retry the "
                "request."
            )
        if self.event_count == 0 and self.error is None:
            raise KiroAPIError(
                "Kiro answered with an empty response stream (no events). This is usually "
                "temporary: retry the request."
            )
