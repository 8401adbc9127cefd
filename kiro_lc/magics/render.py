"""Where an answer appears: a live display handle in notebooks, plain stdout in terminals.

``NotebookRenderer`` publishes one raw mimebundle with ``display_id=True`` and updates it at most
every ``interval`` seconds plus once at the end, so a saved notebook holds exactly one output
with the final answer. ``TerminalRenderer`` prints deltas as they come: no display handles, no
reprs. Both hold an :class:`~kiro_lc.magics.answer.Answer`, which builds the bundles.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from kiro_lc.magics.answer import Answer, Bundle, ToolRecord

__all__ = ["NotebookRenderer", "Renderer", "TerminalRenderer", "publish"]

#: Above this many characters, updates are spaced out proportionally (each one re-renders it all).
_LARGE_ANSWER = 20_000


def publish(obj: Any, **kwargs: Any) -> Any:
    """``IPython.display.display`` (imported on first use); returns the handle if one is asked."""
    from IPython.display import display

    return display(obj, **kwargs)  # type: ignore[no-untyped-call]


class Renderer(Protocol):
    """What the magic drives while an answer streams."""

    answer: Answer

    def start(self) -> None:
        """Show that a request is on its way."""

    def push(self, delta: str) -> None:
        """Add a text delta."""

    def tool(self, record: ToolRecord) -> None:
        """Show a finished tool call."""

    def finish(
        self, *, note: str = "", footer: str = "", metadata: dict[str, Any] | None = None
    ) -> None:
        """Show the final answer (once)."""


class NotebookRenderer:
    """One raw mimebundle display, updated at most every ``interval`` seconds and once at the end.

    ``interval=0`` means: placeholder, then the final answer only.
    """

    def __init__(
        self,
        answer: Answer,
        *,
        interval: float = 0.1,
        display: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.answer = answer
        self.interval = interval
        self.updates = 0
        self._display = display
        self._clock = clock
        self._handle: Any = None
        self._last = 0.0

    def start(self) -> None:
        """Publish the waiting placeholder and keep its display handle."""
        show = self._display or publish
        self._handle = show(self.answer.waiting_bundle(), raw=True, display_id=True)
        self._last = self._clock()

    def push(self, delta: str) -> None:
        """Add text; refresh the display if the (size-adjusted) interval has passed."""
        self.answer.add_text(delta)
        if self.interval <= 0:
            return
        size_factor = max(1.0, len(self.answer.text) / _LARGE_ANSWER)
        if self._clock() - self._last >= self.interval * size_factor:
            self._update(self.answer.streaming_bundle())

    def tool(self, record: ToolRecord) -> None:
        """Add a tool call and show it right away (tools may take a while to run)."""
        self.answer.add_tool(record)
        if self.interval > 0:
            self._update(self.answer.streaming_bundle())

    def finish(
        self, *, note: str = "", footer: str = "", metadata: dict[str, Any] | None = None
    ) -> None:
        """Replace the display with the final bundle, carrying the provenance metadata."""
        self._update(self.answer.final_bundle(note, footer), metadata=metadata)

    def _update(self, bundle: Bundle, metadata: dict[str, Any] | None = None) -> None:
        self._handle.update(bundle, raw=True, metadata=metadata or {})
        self.updates += 1
        self._last = self._clock()


class TerminalRenderer:
    """Plain incremental text on a stream (stdout by default), for terminal IPython."""

    def __init__(self, answer: Answer, *, stream: TextIO | None = None) -> None:
        self.answer = answer
        self._stream = stream
        self._line_open = False  # the last thing written did not end with a newline

    @property
    def stream(self) -> TextIO:
        """The stream written to (``sys.stdout`` at the time of writing, by default)."""
        return self._stream or sys.stdout

    def start(self) -> None:
        """Nothing to show before the first token in a terminal."""

    def push(self, delta: str) -> None:
        """Print the delta as it arrives."""
        self.answer.add_text(delta)
        self._write(delta)

    def tool(self, record: ToolRecord) -> None:
        """Print one line per tool call."""
        self.answer.add_tool(record)
        self._write(("\n" if self._line_open else "") + record.plain())

    def finish(
        self, *, note: str = "", footer: str = "", metadata: dict[str, Any] | None = None
    ) -> None:
        """End the line; print the note and footer below the answer."""
        tail = "\n" if self._line_open else ""
        if note:
            tail += f"\n{note}\n"
        if footer:
            tail += f"\n{footer}\n"
        self._write(tail)

    def _write(self, text: str) -> None:
        if text:
            self.stream.write(text)
            self.stream.flush()
            self._line_open = not text.endswith("\n")
