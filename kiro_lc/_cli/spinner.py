"""A spinner on stderr while waiting for the first token; only when stderr is a terminal."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TextIO

from kiro_lc._cli.output import isatty

__all__ = ["Spinner"]

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_ASCII_FRAMES = "|/-\\"
_CLEAR_LINE = "\r\x1b[K"


def _frames_for(stream: TextIO) -> str:
    try:
        _FRAMES.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return _ASCII_FRAMES
    return _FRAMES


class Spinner:
    """``with Spinner(sys.stderr, "waiting for Kiro"):`` animates until :meth:`stop`.

    Does nothing when ``stream`` is not a TTY (or ``enabled`` is false), so piped output stays
    clean. :meth:`stop` is idempotent, erases the spinner's line and returns only once the
    animation thread can no longer write.
    """

    def __init__(
        self, stream: TextIO, text: str, *, enabled: bool = True, interval: float = 0.08
    ) -> None:
        self._stream = stream
        self._text = text
        self._interval = interval
        self._enabled = enabled and isatty(stream)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether the spinner is currently drawn."""
        return self._thread is not None and not self._stopped.is_set()

    def start(self) -> Spinner:
        """Start animating (no-op when disabled or already started)."""
        if self._enabled and self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="kiro-lc-spinner", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop animating and erase the line."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()

    def _spin(self) -> None:
        frames = _frames_for(self._stream)
        i = 0
        while not self._stopped.is_set():
            self._stream.write(f"\r{frames[i % len(frames)]} {self._text}")
            self._stream.flush()
            i += 1
            self._stopped.wait(self._interval)

    def __enter__(self) -> Spinner:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
