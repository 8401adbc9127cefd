"""``kiro-lc status``, ``kiro-lc models`` and ``kiro-lc usage``: what the account has.

``status`` only reads the credential source (no network); ``models`` and ``usage`` ask Kiro
(ListAvailableModels, GetUsageLimits). None of them ever prints a token.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from kiro_lc._cli.output import format_credits, format_table, print_json, to_jsonable

if TYPE_CHECKING:
    from kiro_lc._cli.output import Subparsers
    from kiro_lc.auth import AuthStatus
    from kiro_lc.models import ModelList, UsageLimits
    from kiro_lc.transport import KiroTransport


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _transport() -> KiroTransport:
    from kiro_lc.auth import KiroAuth
    from kiro_lc.transport import KiroTransport

    return KiroTransport(KiroAuth())


# -- status ----------------------------------------------------------------------------------


def add_status(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Declare ``kiro-lc status``."""
    parser = subparsers.add_parser(
        "status",
        parents=parents,
        help="show which Kiro credentials kiro-lc uses (never the token)",
        description=(
            "Show where kiro-lc found Kiro credentials: source, login kind, region, profile ARN "
            "and expiry. Reads the source only; sends nothing to Kiro. Exits 1 with the sign-in "
            "instructions when no credentials are found."
        ),
    )
    _json_flag(parser)
    parser.set_defaults(handler=run_status)


def api_url_for(status: AuthStatus) -> str:
    """Where API requests go: ``KIRO_API_URL``, else the regional Kiro endpoint."""
    from kiro_lc.auth.credentials import region_from_arn

    explicit = os.environ.get("KIRO_API_URL")
    if explicit:
        return explicit.rstrip("/")
    region = region_from_arn(status.profile_arn) if status.profile_arn else None
    return f"https://q.{region or status.region}.amazonaws.com"


def run_status(args: argparse.Namespace) -> int:
    """Print the credentials summary of :meth:`kiro_lc.auth.KiroAuth.status`."""
    from kiro_lc.auth import KiroAuth, format_status

    status = KiroAuth().status()
    if args.json:
        print_json({**to_jsonable(status), "api_url": api_url_for(status)})
    else:
        print(format_status(status))
        print(f"{'API URL:':<14}{api_url_for(status)}")
    return 0


# -- models ----------------------------------------------------------------------------------


def add_models(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Declare ``kiro-lc models``."""
    parser = subparsers.add_parser(
        "models",
        parents=parents,
        help="list the models your Kiro account can use",
        description=(
            "Ask Kiro which models this account may use (ListAvailableModels): id, name, "
            "context window, credit multiplier; * marks Kiro's default."
        ),
    )
    _json_flag(parser)
    parser.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace) -> int:
    """Print the live model catalogue."""
    with _transport() as transport:
        models = transport.list_models()
    if args.json:
        print_json(_models_json(models))
    else:
        print(_models_table(models))
    return 0


def _models_json(models: ModelList) -> dict[str, object]:
    return {
        "default": models.default_model_id,
        "models": [
            {
                "id": m.model_id,
                "name": m.name,
                "context_window": m.max_input_tokens,
                "max_output_tokens": m.max_output_tokens,
                "credit_multiplier": m.rate_multiplier,
                "images": m.image_inputs,
                "default": m.model_id == models.default_model_id,
            }
            for m in models.models
        ],
    }


def _window(tokens: int | None) -> str:
    if tokens is None:
        return "?"
    if tokens >= 1_000_000 and tokens % 1_000_000 == 0:
        return f"{tokens // 1_000_000}M"
    return f"{tokens // 1000}k" if tokens >= 1000 else str(tokens)


def _models_table(models: ModelList) -> str:
    rows = [
        [
            m.model_id + (" *" if m.model_id == models.default_model_id else ""),
            m.name or "",
            _window(m.max_input_tokens),
            "?" if m.rate_multiplier is None else f"{m.rate_multiplier:g}x",
        ]
        for m in models.models
    ]
    table = format_table(["MODEL", "NAME", "CONTEXT", "CREDITS"], rows)
    if not rows:
        return "Kiro listed no models for this account."
    return table + "\n* default.  Use an id with: kiro-lc chat -m MODEL"


# -- usage -----------------------------------------------------------------------------------


def add_usage(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Declare ``kiro-lc usage``."""
    parser = subparsers.add_parser(
        "usage",
        parents=parents,
        help="show credits used and left this month, and the reset date",
        description="Ask Kiro for this account's plan and credit usage (GetUsageLimits).",
    )
    _json_flag(parser)
    parser.set_defaults(handler=run_usage)


def run_usage(args: argparse.Namespace) -> int:
    """Print plan, credits used / left and the reset date."""
    with _transport() as transport:
        usage = transport.get_usage_limits()
    if args.json:
        print_json({**to_jsonable(usage), "credits_remaining": usage.credits_remaining})
    else:
        print(format_usage(usage))
    return 0


def format_usage(usage: UsageLimits) -> str:
    """Human-readable lines for ``kiro-lc usage``."""
    unit = (usage.unit or "credits").lower()
    used, limit = format_credits(usage.credits_used), format_credits(usage.credits_limit)
    rows = [
        ("Plan", usage.plan_title or usage.plan_type or "unknown"),
        ("Used", f"{used} of {limit} {unit}"),
        ("Left", f"{format_credits(usage.credits_remaining)} {unit}"),
    ]
    if usage.next_reset is not None:
        days = f" (in {usage.days_until_reset} days)" if usage.days_until_reset is not None else ""
        rows.append(("Resets", f"{usage.next_reset:%Y-%m-%d}{days}"))
    if usage.overage_status:
        rows.append(("Overage", usage.overage_status.lower()))
    trial = usage.free_trial
    if trial is not None and trial.limit is not None:
        rows.append(
            (
                "Free trial",
                f"{format_credits(trial.used)} of {format_credits(trial.limit)} {unit}"
                + (f", {trial.status.lower()}" if trial.status else ""),
            )
        )
    return "\n".join(f"{label + ':':<12}{value}" for label, value in rows)
