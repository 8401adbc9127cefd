"""``kiro-lc chat``: stream an answer to the terminal, once or as an interactive conversation.

The answer goes to stdout as it arrives; everything else (spinner, usage line, hints) goes to
stderr, so ``kiro-lc chat "..." > answer.md`` captures the answer alone. Interactive mode (stdin
is a terminal and no prompt was given): Ctrl-C stops the current answer, Ctrl-D quits.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from kiro_lc._cli.output import (
    UsageProblem,
    error_text,
    format_credits,
    isatty,
    tolerant,
    warn,
)
from kiro_lc._cli.spinner import Spinner

if TYPE_CHECKING:
    from langchain_core.messages import AIMessageChunk, BaseMessage

    from kiro_lc._cli.output import Subparsers
    from kiro_lc.chat_models import ChatKiro

__all__ = ["Answer", "add_chat", "run_chat", "stream_answer", "usage_line"]

PROMPT = "you> "
EMPTY_ANSWER_HINT = (
    "Kiro sent an empty answer. That usually means the model is overloaded or you are being "
    "rate-limited: retry in a moment, or try a lighter model with -m claude-haiku-4-5."
)


def add_chat(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Declare ``kiro-lc chat``."""
    parser = subparsers.add_parser(
        "chat",
        parents=parents,
        help="ask a model and stream the answer (interactive without a prompt)",
        description=(
            "Stream an answer from a Claude model of your Kiro account. The prompt comes from "
            "the arguments, or from stdin when none is given or it is '-'. With no prompt on a "
            "terminal, starts an interactive chat: Ctrl-C stops the current answer, Ctrl-D "
            "quits. The answer goes to stdout; the usage line (estimated tokens, credits) to "
            "stderr."
        ),
    )
    parser.add_argument(
        "-m",
        "--model",
        default=None,
        help="model id or alias, e.g. claude-haiku-4-5 or sonnet (default claude-sonnet-4-5; "
        "`kiro-lc models` lists yours)",
    )
    parser.add_argument("--system", metavar="TEXT", default=None, help="a system prompt")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no usage line, no spinner, no banner"
    )
    parser.add_argument(
        "prompt",
        nargs="*",
        metavar="PROMPT",
        help="the question (words are joined by spaces); a '-' stands for stdin's text",
    )
    parser.set_defaults(handler=run_chat)


def run_chat(args: argparse.Namespace) -> int:
    """Answer one prompt, or chat interactively."""
    prompt = _read_prompt(args.prompt, sys.stdin)
    model = _make_model(args.model)
    out = tolerant(sys.stdout)
    if prompt is None:
        return _interactive(model, args.system, quiet=args.quiet, out=out)
    return _one_shot(model, prompt, args.system, quiet=args.quiet, out=out)


def _read_prompt(words: Sequence[str], stdin: TextIO) -> str | None:
    """The prompt from the arguments and/or stdin; ``None`` means "chat interactively".

    No words: stdin is the prompt (unless it is a terminal). A ``-`` among the words stands
    for stdin's text on lines of its own: ``git diff | kiro-lc chat "Review this:" -``.
    """
    if not words and isatty(stdin):
        return None
    if words and "-" not in words:
        return " ".join(words)
    piped = stdin.read().strip("\n")
    segments: list[str] = []
    line: list[str] = []
    for word in words or ["-"]:
        if word != "-":
            line.append(word)
            continue
        if line:
            segments.append(" ".join(line))
            line = []
        segments.append(piped)
    if line:
        segments.append(" ".join(line))
    text = "\n".join(s for s in segments if s)
    if not text.strip():
        raise UsageProblem("no prompt: give one as an argument or pipe it on stdin")
    return text


def _make_model(name: str | None) -> ChatKiro:
    from kiro_lc.chat_models import ChatKiro

    return ChatKiro(model=name) if name else ChatKiro()


def _messages(system: str | None, *turns: BaseMessage) -> list[BaseMessage]:
    from langchain_core.messages import SystemMessage

    return [SystemMessage(system), *turns] if system else list(turns)


# -- streaming ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """What arrived of one answer so far (also after an interruption)."""

    parts: list[str] = field(default_factory=list)
    final: AIMessageChunk | None = None

    @property
    def text(self) -> str:
        """The answer's text."""
        return "".join(self.parts)


def stream_answer(
    model: ChatKiro,
    messages: list[BaseMessage],
    answer: Answer,
    *,
    out: TextIO,
    err: TextIO,
    spin: bool,
) -> None:
    """Stream the model's answer to ``out`` as it arrives, recording it in ``answer``.

    A spinner runs on ``err`` (a TTY only) until the first text arrives. Exceptions, including
    ``KeyboardInterrupt``, propagate with ``answer`` holding what was printed.
    """
    spinner = Spinner(err, f"waiting for {model.model_id}…", enabled=spin).start()
    stream = model.stream(messages)
    try:
        for chunk in stream:
            text = chunk.text
            if text:
                spinner.stop()
                out.write(text)
                out.flush()
                answer.parts.append(text)
            if chunk.chunk_position == "last":
                answer.final = chunk
    finally:
        spinner.stop()
        if isinstance(stream, Generator):
            stream.close()


def usage_line(final: AIMessageChunk | None) -> str | None:
    """``claude-sonnet-4.5 · ≈58 tokens in, ≈13 out · 0.027 credits · context 0.03%``."""
    if final is None:
        return None
    meta = final.response_metadata
    parts = [str(meta.get("model_name") or "?")]
    usage = final.usage_metadata
    if usage:
        parts.append(f"≈{usage['input_tokens']} tokens in, ≈{usage['output_tokens']} out")
    credits = meta.get("credits")
    if isinstance(credits, (int, float)):
        parts.append(f"{format_credits(credits)} credits")
    pct = meta.get("context_usage_pct")
    if isinstance(pct, (int, float)):
        parts.append(f"context {pct:.2g}%")
    return " · ".join(parts)


def _end_line(answer: Answer, out: TextIO) -> None:
    if answer.parts and not answer.text.endswith("\n"):
        out.write("\n")
        out.flush()


def _report(answer: Answer, *, quiet: bool) -> None:
    """Usage line and hints on stderr once an answer is complete."""
    stop_reason = answer.final.response_metadata.get("stop_reason") if answer.final else None
    if not answer.parts:
        warn(EMPTY_ANSWER_HINT)
    elif stop_reason == "max_tokens":
        warn("(The answer was cut off: the model reached its output limit.)")
    line = usage_line(answer.final)
    if line and not quiet:
        warn(line)


# -- the two modes ---------------------------------------------------------------------------


def _one_shot(model: ChatKiro, prompt: str, system: str | None, *, quiet: bool, out: TextIO) -> int:
    from langchain_core.messages import HumanMessage

    answer = Answer()
    try:
        stream_answer(
            model,
            _messages(system, HumanMessage(prompt)),
            answer,
            out=out,
            err=sys.stderr,
            spin=not quiet,
        )
    finally:
        _end_line(answer, out)
    _report(answer, quiet=quiet)
    return 0 if answer.parts else 1


def _interactive(model: ChatKiro, system: str | None, *, quiet: bool, out: TextIO) -> int:
    _enable_line_editing()
    if not quiet:
        warn(f"Chatting with {model.model_id} through Kiro. Ctrl-C stops an answer, Ctrl-D quits.")
    history = _messages(system)
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            out.write("\n")
            return 0
        except KeyboardInterrupt:
            warn("\n(Ctrl-D quits)")
            continue
        if line.strip():
            _turn(model, history, line, quiet=quiet, out=out)


def _turn(
    model: ChatKiro, history: list[BaseMessage], line: str, *, quiet: bool, out: TextIO
) -> None:
    """One exchange of the interactive chat; ``history`` grows only by what was answered."""
    from langchain_core.messages import AIMessage, HumanMessage

    from kiro_lc.errors import KiroError

    answer = Answer()
    messages = [*history, HumanMessage(line)]
    try:
        stream_answer(model, messages, answer, out=out, err=sys.stderr, spin=not quiet)
    except KeyboardInterrupt:
        _end_line(answer, out)
        warn("[stopped]")
    except KiroError as exc:
        _end_line(answer, out)
        warn(error_text(exc))
    else:
        _end_line(answer, out)
        _report(answer, quiet=quiet)
    if answer.parts:
        history.extend([HumanMessage(line), AIMessage(answer.text)])


def _enable_line_editing() -> None:
    with contextlib.suppress(ImportError):  # Windows has no readline
        import readline  # noqa: F401  (importing it gives input() editing and history)
