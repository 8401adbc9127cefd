"""Parsing of ``%%kiro`` options and ``%kiro`` subcommands into typed values.

Every bad option becomes an IPython ``UsageError`` (a one-line message, no traceback); the
parser's help is part of the magic's docstring, so ``%kiro?`` shows it.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
from dataclasses import dataclass
from typing import NoReturn

from IPython.core.error import UsageError

__all__ = [
    "FORMATS",
    "SUBCOMMANDS",
    "USAGE",
    "CellArgs",
    "LineCommand",
    "parse_cell_args",
    "parse_line",
]

FORMATS = ("markdown", "text", "code", "json", "html")
_FORMAT_ALIASES = {"md": "markdown", "txt": "text", "python": "code", "py": "code"}

#: Subcommand -> one-line description, in the order ``%kiro help`` lists them.
SUBCOMMANDS: dict[str, str] = {
    "models": "list the models of your account (and a picker in widget frontends)",
    "use": "use MODEL: set the default model, e.g. `%kiro use haiku`",
    "reset": "forget the conversation",
    "history": "show the conversation kept for the next turn",
    "system": "show or set the system prompt (`%kiro system TEXT`, `%%kiro system`)",
    "status": "show which credentials kiro-lc uses",
    "usage": "show the credits left this month",
    "fix": "explain the last error and how to fix it (alias: error)",
    "debug": "show the full traceback of the last failed %%kiro call",
    "help": "show this help",
}
_SUBCOMMAND_ALIASES = {"error": "fix", "list": "models"}


@dataclass(frozen=True)
class CellArgs:
    """Options of one ``%%kiro`` cell (``None`` means: use the configured default)."""

    model: str | None = None
    format: str | None = None
    new: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    system: str | None = None
    tools: tuple[str, ...] = ()
    interpolate: bool = True


@dataclass(frozen=True)
class LineCommand:
    """A ``%kiro`` subcommand: its canonical name and the rest of the line, unparsed."""

    name: str
    rest: str


def _format(value: str) -> str:
    name = _FORMAT_ALIASES.get(value.lower(), value.lower())
    if name not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"unknown format {value!r}; use one of {', '.join(FORMATS)}"
        )
    return name


def _tool_names(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(
            "--tools needs names of functions, e.g. --tools add,search"
        )
    return names


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises IPython's ``UsageError`` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _build_parser() -> _Parser:
    p = _Parser(prog="%%kiro", add_help=False, description="Ask Kiro; the cell body is the prompt.")
    p.add_argument("positional_model", nargs="?", metavar="MODEL", help="same as -m MODEL")
    p.add_argument(
        "-m", "--model", metavar="MODEL", help="model id or alias (sonnet, haiku, opus, auto, ...)"
    )
    p.add_argument("-f", "--format", type=_format, metavar="FORMAT", help=f"{'|'.join(FORMATS)}")
    p.add_argument("--new", action="store_true", help="one-shot turn: no memory in or out")
    p.add_argument("-t", "--temperature", type=float, metavar="T", help="sampling temperature")
    p.add_argument("--max-tokens", type=int, metavar="N", help="cap on the answer's tokens")
    p.add_argument("--system", metavar="TEXT", help="system prompt for this cell only")
    p.add_argument(
        "--tools", type=_tool_names, metavar="NAMES", help="comma-separated functions Kiro may call"
    )
    p.add_argument("--no-interp", action="store_true", help="send {name} placeholders as typed")
    return p


_PARSER = _build_parser()


def parse_cell_args(line: str) -> CellArgs:
    """Parse the options of a ``%%kiro`` line; raise ``UsageError`` with a one-line reason."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"cannot parse the %%kiro line: {exc}") from None
    ns = _PARSER.parse_args(argv)
    if ns.positional_model and ns.model:
        raise UsageError("give the model once: either `%%kiro MODEL` or `%%kiro -m MODEL`")
    return CellArgs(
        model=ns.model or ns.positional_model,
        format=ns.format,
        new=ns.new,
        temperature=ns.temperature,
        max_tokens=ns.max_tokens,
        system=ns.system,
        tools=ns.tools or (),
        interpolate=not ns.no_interp,
    )


def subcommand_of(line: str) -> LineCommand | None:
    """The subcommand a line starts with (aliases resolved), or ``None`` if it starts otherwise."""
    head, _, rest = line.strip().partition(" ")
    name = _SUBCOMMAND_ALIASES.get(head, head)
    if name in SUBCOMMANDS:
        return LineCommand(name, rest.strip())
    return None


def parse_line(line: str) -> LineCommand:
    """Parse a ``%kiro`` line magic; an empty line means ``help``; prompts belong in ``%%kiro``."""
    if not line.strip():
        return LineCommand("help", "")
    command = subcommand_of(line)
    if command is not None:
        return command
    head = line.split()[0]
    close = difflib.get_close_matches(head, [*SUBCOMMANDS, *_SUBCOMMAND_ALIASES], n=1)
    hint = f"Did you mean `%kiro {close[0]}`? " if close else ""
    raise UsageError(
        f"unknown subcommand {head!r}. {hint}To ask Kiro, use the cell magic: "
        "`%%kiro` on the first line, your prompt below. `%kiro help` lists the subcommands."
    )


def _usage() -> str:
    help_text = _PARSER.format_help()
    options = help_text[help_text.index("options:") :].strip()
    subcommands = "\n".join(f"  %kiro {name:<8} {text}" for name, text in SUBCOMMANDS.items())
    return (
        "Ask Kiro from a cell; the answer streams into the cell output.\n\n"
        "  %%kiro [MODEL] [-m MODEL] [-f FORMAT] [--new] [-t T] [--max-tokens N]\n"
        "         [--system TEXT] [--tools a,b] [--no-interp]\n"
        "  <your prompt; {name}, {obj.attr}, {In[3]}, {Out[3]} are filled in>\n\n"
        f"{options}\n\n"
        f"Subcommands:\n{subcommands}\n  %%kiro system  the cell body becomes the system prompt\n\n"
        "Configure with %config KiroMagics.<trait> = value (default_model, default_format,\n"
        "max_history, stream_interval, system_prompt, show_usage, widgets, renderer, ...)."
    )


USAGE = _usage()
