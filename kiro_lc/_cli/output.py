"""Small output helpers shared by the ``kiro-lc`` subcommands: JSON, tables, numbers."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import argparse
    from typing import TypeAlias

    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
    """The object ``add_subparsers`` returns, as the ``add_<command>`` functions receive it."""

__all__ = [
    "UsageProblem",
    "error_text",
    "format_credits",
    "format_table",
    "isatty",
    "print_json",
    "to_jsonable",
    "tolerant",
    "warn",
]


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses become dicts (without their ``raw`` field),
    datetimes ISO 8601 strings, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "raw"
        }
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any, out: TextIO | None = None) -> None:
    """Print ``value`` as indented JSON (see :func:`to_jsonable`)."""
    print(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False), file=out or sys.stdout)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, with a header line."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def format_credits(value: float | None) -> str:
    """``0.027``, ``12.5``, ``1000``: at most three decimals, no trailing zeros."""
    if value is None:
        return "?"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def warn(message: str) -> None:
    """Print ``message`` on stderr."""
    print(message, file=sys.stderr, flush=True)


class UsageProblem(Exception):
    """A command-line mistake the parser could not catch; ``kiro-lc`` exits with status 2."""


def error_text(exc: BaseException) -> str:
    """The one-line form of an error for stderr: ``kiro-lc: <what happened and what to do>``."""
    return f"kiro-lc: {exc}"


def tolerant(stream: TextIO) -> TextIO:
    """``stream`` set to replace characters its encoding cannot show (e.g. a cp1252 pipe on
    Windows) instead of failing in the middle of an answer."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    reconfigure = getattr(stream, "reconfigure", None)
    if encoding not in ("utf8", "") and reconfigure is not None:
        reconfigure(errors="replace")
    return stream


def isatty(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (``False`` for closed or fake streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
