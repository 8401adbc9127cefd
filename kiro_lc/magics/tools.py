"""``--tools a,b``: functions from the user namespace become LangChain tools, run in the kernel.

A tool that raises does not fail the cell: the error goes back to the model as the tool's
result (so it can correct its call) and is shown in the cell as a failed call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from IPython.core.error import UsageError
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool

from kiro_lc.magics.answer import ToolRecord

__all__ = ["resolve_tools", "run_tool_call"]


def resolve_tools(names: Sequence[str], namespace: Mapping[str, Any]) -> list[BaseTool]:
    """The tools named on the ``%%kiro`` line: callables (or LangChain tools) of the namespace."""
    tools: list[BaseTool] = []
    for name in names:
        obj = namespace.get(name)
        if obj is None:
            raise UsageError(f"--tools: nothing named {name!r} in your namespace; define it first.")
        if isinstance(obj, BaseTool):
            tools.append(obj)
        elif callable(obj):
            doc = (getattr(obj, "__doc__", None) or "").strip()
            tools.append(
                StructuredTool.from_function(
                    obj, name=name, description=doc or f"The Python function {name}."
                )
            )
        else:
            raise UsageError(f"--tools: {name!r} is a {type(obj).__name__}, not a function.")
    return tools


def run_tool_call(tools: Mapping[str, BaseTool], call: ToolCall) -> tuple[ToolMessage, ToolRecord]:
    """Run one tool call; return the message for the model and the record for the display."""
    args = dict(call.get("args") or {})
    tool = tools.get(call["name"])
    failed = False
    if tool is None:
        failed, content = True, f"There is no tool named {call['name']!r}."
    else:
        try:
            content = _as_text(tool.invoke(args))
        except Exception as exc:  # the model sees the error and may retry differently
            failed, content = True, f"{type(exc).__name__}: {exc}"
    message = ToolMessage(
        content=content,
        tool_call_id=call.get("id") or "",
        name=call["name"],
        status="error" if failed else "success",
    )
    return message, ToolRecord(call["name"], args, content, failed)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)
