"""Safe ``{name}`` interpolation of cell text.

Only four shapes are replaced — ``{name}``, ``{name.attr...}``, ``{In[n]}`` and ``{Out[n]}`` —
and only when they resolve in the user namespace. Every other brace (pasted code, JSON, f-strings,
Jinja) stays exactly as typed, unlike ``str.format_map``, which raises on ``{'a': 1}``.
Doubling the braces of a placeholder (``{{name}}``) keeps it literal: it becomes ``{name}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["interpolate"]

_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_HISTORY = r"(?:In|Out)\[-?\d+\]"
_PLACEHOLDER = re.compile(
    rf"\{{\{{(?P<escaped>{_NAME}|{_HISTORY})\}}\}}"  # {{name}} -> literal {name}
    rf"|\{{(?P<history>(?P<table>In|Out)\[(?P<index>-?\d+)\])\}}"
    rf"|\{{(?P<name>{_NAME})\}}"
)
_MISSING = object()


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Fill the placeholders of ``text`` that resolve in ``namespace``; keep the rest as typed."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"] is not None:
            return "{" + match["escaped"] + "}"
        if match["history"] is not None:
            value = _history_entry(namespace, match["table"], int(match["index"]))
        else:
            value = _dotted_lookup(namespace, match["name"])
        return match[0] if value is _MISSING else str(value)

    return _PLACEHOLDER.sub(replace, text)


def _dotted_lookup(namespace: Mapping[str, Any], dotted: str) -> Any:
    head, *attrs = dotted.split(".")
    value = namespace.get(head, _MISSING)
    for attr in attrs:
        if value is _MISSING:
            break
        try:
            value = getattr(value, attr)
        except Exception:  # any failing property leaves the placeholder as typed
            return _MISSING
    return value


def _history_entry(namespace: Mapping[str, Any], table: str, index: int) -> Any:
    entries = namespace.get(table)
    if entries is None:
        return _MISSING
    try:
        return entries[index]
    except (IndexError, KeyError, TypeError):
        return _MISSING
