"""Per-shell state of the extension: the conversation, the model-list cache, the last failure.

Also builds the ``%kiro fix`` prompt from ``sys.last_value`` / ``sys.last_traceback`` (set by
IPython whenever it shows a traceback) and the failing ``In[n]`` — no exception hook needed.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = ["Conversation", "ErrorReport", "KiroSession", "Turn", "last_error_report"]

_MAX_TRACEBACK_LINES = 60


@dataclass(frozen=True)
class Turn:
    """One finished exchange: what the user sent and what the model answered."""

    prompt: str
    answer: str
    model: str


class Conversation:
    """The kernel's conversation; only the last ``max_history`` turns are sent with a prompt."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def __len__(self) -> int:
        return len(self.turns)

    def recent(self, max_history: int) -> list[Turn]:
        """The turns sent with the next prompt (the last ``max_history``; none if 0)."""
        return self.turns[-max_history:] if max_history > 0 else []

    def record(self, turn: Turn) -> None:
        """Remember a finished turn."""
        self.turns.append(turn)

    def reset(self) -> int:
        """Forget every turn; return how many there were."""
        count = len(self.turns)
        self.turns.clear()
        return count


@dataclass
class KiroSession:
    """Everything the magic remembers between cells of one kernel."""

    conversation: Conversation = field(default_factory=Conversation)
    #: ``kiro_lc.models.ModelList`` once ``%kiro models`` (or a model check) fetched it.
    models: Any = None
    #: The last exception a ``%%kiro`` cell raised, for ``%kiro debug``.
    last_failure: BaseException | None = None
    #: Whether the "Kiro ignores -t/--max-tokens" note was shown already.
    noted_sampling: bool = False
    #: The latest model picker (an ipywidgets ``Dropdown``) shown by ``%kiro models``.
    picker: Any = None
    #: Callbacks that unbind the model pickers from ``default_model`` (run on unload).
    unbind_pickers: list[Callable[[], None]] = field(default_factory=list)
    _chat_models: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)

    def model(self, magics: Any, **kwargs: Any) -> Any:
        """A chat model for these options, reused across cells (and its HTTP connections).

        Rebuilt when a ``KIRO_*`` environment variable changed since, e.g. ``%env KIRO_API_URL``.
        """
        options = {k: v for k, v in kwargs.items() if v is not None}
        env = hash(frozenset((k, v) for k, v in os.environ.items() if k.startswith("KIRO_")))
        key = (env, *sorted(options.items()))
        if key not in self._chat_models:
            self._chat_models[key] = magics._make_model(**options)
        return self._chat_models[key]

    def close(self) -> None:
        """Close cached model clients and detach the picker."""
        for chat_model in self._chat_models.values():
            close = getattr(chat_model, "close", None)
            if callable(close):
                close()
        self._chat_models.clear()
        for unbind in self.unbind_pickers:
            unbind()
        self.unbind_pickers.clear()


@dataclass(frozen=True)
class ErrorReport:
    """The last error of the shell, ready to be explained."""

    cell: str | None
    cell_label: str | None
    error: str
    traceback: str

    def prompt(self) -> str:
        """The question ``%kiro fix`` sends."""
        parts = ["This code raised an error in my Jupyter notebook."]
        if self.cell is not None:
            parts.append(f"The cell ({self.cell_label}):\n```python\n{self.cell.rstrip()}\n```")
        parts.append(f"The traceback:\n```\n{self.traceback.rstrip()}\n```")
        parts.append(
            "Explain briefly what went wrong, then show the corrected code in one python block."
        )
        return "\n\n".join(parts)


def last_error_report(shell: Any) -> ErrorReport | None:
    """The shell's last error (not an interrupt) with its traceback and failing cell, if any."""
    value = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if value is None or isinstance(value, KeyboardInterrupt):
        return None
    tb = value.__traceback__ or getattr(sys, "last_traceback", None)
    filename_map: dict[str, int] = getattr(getattr(shell, "compile", None), "_filename_map", {})
    number = _failing_cell(value, tb, filename_map)
    cell = _input_cell(shell, number) if number is not None else None
    lines = _user_traceback(value, tb, filename_map)
    return ErrorReport(
        cell=cell,
        cell_label=f"In[{number}]" if number is not None else None,
        error=f"{type(value).__name__}: {value}",
        traceback="".join(lines[-_MAX_TRACEBACK_LINES:]),
    )


def _failing_cell(
    value: BaseException, tb: TracebackType | None, filename_map: dict[str, int]
) -> int | None:
    number = None
    while tb is not None:  # the innermost frame that ran in a cell
        number = filename_map.get(tb.tb_frame.f_code.co_filename, number)
        tb = tb.tb_next
    if number is None and isinstance(value, SyntaxError) and value.filename:
        number = filename_map.get(value.filename)
    return number


def _input_cell(shell: Any, number: int) -> str | None:
    inputs = getattr(shell, "user_ns", {}).get("In")
    try:
        return str(inputs[number]) if inputs is not None else None
    except IndexError:
        return None


def _user_traceback(
    value: BaseException, tb: TracebackType | None, filename_map: dict[str, int]
) -> list[str]:
    # Skip IPython's own frames above the first cell frame, and name cells In[n] as IPython does.
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename not in filename_map:
        start = start.tb_next
    lines = traceback.format_exception(type(value), value, start or tb)
    for name, number in filename_map.items():
        lines = [line.replace(f'File "{name}"', f"In[{number}]") for line in lines]
    return lines
