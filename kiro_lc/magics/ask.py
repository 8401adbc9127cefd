"""A ``%%kiro`` cell from parsed options to a finished answer (and its memory entry).

Imports LangChain and the model class on the first cell, never at ``%load_ext``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from kiro_lc.magics.answer import Answer
from kiro_lc.magics.arguments import CellArgs
from kiro_lc.magics.catalog import check_model
from kiro_lc.magics.interpolate import interpolate
from kiro_lc.magics.render import NotebookRenderer, Renderer, TerminalRenderer
from kiro_lc.magics.session import Turn
from kiro_lc.magics.tools import resolve_tools
from kiro_lc.magics.turn import TurnResult, run_turn

if TYPE_CHECKING:
    from kiro_lc.magics.magics import KiroMagics

__all__ = ["FORMAT_INSTRUCTIONS", "ask", "build_messages", "make_renderer"]

#: Appended to the prompt sent (not to the one remembered) so the answer fits the format.
FORMAT_INSTRUCTIONS = {
    "markdown": "",
    "text": "Answer in plain text, without markdown formatting.",
    "code": "Answer with source code only, in one fenced code block, with no text before or after.",
    "json": "Answer with JSON only: no prose and no code fences.",
    "html": "Answer with an HTML fragment only (no <html> or <body>), without code fences.",
}


def ask(
    magics: KiroMagics, args: CellArgs, cell: str, *, interpolate_prompt: bool = True
) -> TurnResult:
    """Send ``cell`` as a prompt, stream the answer into the cell, remember the exchange."""
    shell = magics.ip
    prompt = cell.strip("\n")
    if not prompt.strip():
        raise UsageError("The cell is empty: write your prompt below the %%kiro line.")
    if args.interpolate and interpolate_prompt:
        prompt = interpolate(prompt, shell.user_ns)
    if (args.temperature, args.max_tokens) != (None, None) and not magics.session.noted_sampling:
        magics.session.noted_sampling = True
        print(
            "Note: Kiro has no temperature or output-length setting; -t and --max-tokens are "
            "accepted (and traced) but do not change the answer.",
            file=sys.stderr,
        )
    fmt = args.format or magics.default_format
    model_id = check_model(magics, args.model or magics.default_model)
    tools = resolve_tools(args.tools, shell.user_ns)
    messages = build_messages(magics, args, prompt, fmt)
    model = magics.session.model(
        magics,
        model=model_id,
        temperature=args.temperature if args.temperature is not None else magics.temperature,
        max_tokens=args.max_tokens if args.max_tokens is not None else magics.max_tokens,
    )
    renderer = make_renderer(magics, fmt)
    try:
        result = run_turn(
            model,
            messages,
            renderer,
            model_id=model_id,
            tools=tools,
            max_tool_rounds=magics.max_tool_rounds,
            show_footer=magics.show_usage,
        )
    except Exception as exc:
        magics.session.last_failure = exc
        raise
    # An interrupted turn raised above and is not remembered: a follow-up should not build on
    # half an answer the user stopped.
    if not args.new:
        magics.session.conversation.record(Turn(prompt, result.text, str(result.metadata["model"])))
    if fmt == "code":
        shell.set_next_input(renderer.answer.code(), replace=False)
    return result


def build_messages(magics: KiroMagics, args: CellArgs, prompt: str, fmt: str) -> list[BaseMessage]:
    """System prompt, the remembered turns (unless ``--new``), then this prompt."""
    messages: list[BaseMessage] = []
    system = args.system if args.system is not None else magics.system_prompt
    if system.strip():
        messages.append(SystemMessage(system))
    if not args.new:
        for turn in magics.session.conversation.recent(magics.max_history):
            messages += [HumanMessage(turn.prompt), AIMessage(turn.answer or "(no answer)")]
    instruction = FORMAT_INSTRUCTIONS[fmt]
    messages.append(HumanMessage(f"{prompt}\n\n{instruction}" if instruction else prompt))
    return messages


def make_renderer(magics: KiroMagics, fmt: str) -> Renderer:
    """A live notebook display under a kernel, plain stdout in a terminal (``renderer`` trait)."""
    mode: str = magics.renderer
    if mode == "auto":
        mode = "notebook" if _has_kernel(magics.shell) else "terminal"
    if mode == "notebook":
        return NotebookRenderer(Answer(fmt), interval=magics.stream_interval)
    return TerminalRenderer(Answer(fmt))


def _has_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None
