"""Pure renderings of the subcommands' outputs as mimebundles (markdown + a real text/plain)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kiro_lc.magics.session import Turn
from kiro_lc.models import ModelList

__all__ = ["history_bundle", "models_bundle", "usage_bundle"]

Bundle = dict[str, Any]


def _tokens(count: int | None) -> str:
    if count is None:
        return "?"
    return f"{count // 1_000_000}M" if count % 1_000_000 == 0 else f"{count // 1000}k"


def models_bundle(models: ModelList, current: str) -> Bundle:
    """``%kiro models``: id, name, context window, max output, credit multiplier, markers."""
    header = ("", "model", "name", "context", "max output", "credits ×")
    rows = []
    for m in models.models:
        marks = ("▶" if m.model_id == current else "") + (
            "★" if m.model_id == models.default_model_id else ""
        )
        rate = "?" if m.rate_multiplier is None else f"{m.rate_multiplier:g}"
        rows.append(
            (
                marks,
                m.model_id,
                m.name or "",
                _tokens(m.max_input_tokens),
                _tokens(m.max_output_tokens),
                rate,
            )
        )
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += [
        "| " + " | ".join(f"`{c}`" if i == 1 else c for i, c in enumerate(r)) + " |" for r in rows
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    plain = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    legend = "▶ your default (%kiro use MODEL)   ★ Kiro's default"
    return {
        "text/markdown": "\n".join(md) + f"\n\n{legend}",
        "text/plain": "\n".join(plain) + f"\n\n{legend}",
    }


def history_bundle(turns: Sequence[Turn], sent: int) -> Bundle:
    """``%kiro history``: the remembered turns; the last ``sent`` go with the next prompt."""
    if not turns:
        text = "No conversation yet: the next %%kiro cell starts one."
        return {"text/markdown": f"*{text}*", "text/plain": text}
    first_sent = len(turns) - sent
    md, plain = [], []
    for i, turn in enumerate(turns):
        tag = "" if i >= first_sent else " (not sent: beyond max_history)"
        md.append(f"**You**{tag}:\n\n{turn.prompt}\n\n**Kiro** (`{turn.model}`):\n\n{turn.answer}")
        plain.append(f"You{tag}:\n{turn.prompt}\n\nKiro ({turn.model}):\n{turn.answer}")
    return {"text/markdown": "\n\n---\n\n".join(md), "text/plain": "\n\n----\n\n".join(plain)}


def usage_bundle(usage: Any) -> Bundle:
    """``%kiro usage``: plan, credits used / limit / left, reset date (fields may be unknown)."""

    def num(value: float | None) -> str:
        return "?" if value is None else f"{value:,.2f}".rstrip("0").rstrip(".")

    unit = usage.unit or "credits"
    lines = [
        f"Plan: {usage.plan_title or usage.plan_type or 'unknown'}",
        f"Used: {num(usage.credits_used)} of {num(usage.credits_limit)} {unit}"
        f" ({num(usage.credits_remaining)} left)",
    ]
    if usage.free_trial is not None and usage.free_trial.limit:
        lines.append(
            f"Free trial: {num(usage.free_trial.used)} of {num(usage.free_trial.limit)} used"
        )
    if usage.next_reset is not None:
        lines.append(f"Resets: {usage.next_reset:%Y-%m-%d}")
    return {"text/markdown": "\n\n".join(lines), "text/plain": "\n".join(lines)}
