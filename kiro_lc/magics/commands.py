"""The ``%kiro`` line subcommands: models, use, reset, history, system, status, usage, fix, ..."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from kiro_lc.magics.arguments import USAGE, LineCommand, parse_cell_args
from kiro_lc.magics.catalog import check_model, model_list
from kiro_lc.magics.render import publish
from kiro_lc.magics.session import last_error_report

if TYPE_CHECKING:
    from kiro_lc.magics.magics import KiroMagics

__all__ = ["run", "set_system_prompt", "widgets_enabled"]


def _show(bundle: dict[str, Any]) -> None:
    publish(bundle, raw=True)


def widgets_enabled(magics: KiroMagics) -> bool:
    """Whether to show widgets: ``widgets='on'``, or ``'auto'`` under a kernel."""
    if magics.widgets == "auto":
        return getattr(magics.shell, "kernel", None) is not None
    return bool(magics.widgets == "on")


def _models(magics: KiroMagics, rest: str) -> None:
    from kiro_lc.magics.views import models_bundle
    from kiro_lc.models import resolve_model_id

    if rest not in ("", "--refresh"):
        raise UsageError("usage: %kiro models [--refresh]")
    models = model_list(magics, refresh=rest == "--refresh")
    _show(models_bundle(models, resolve_model_id(magics.default_model)))
    if widgets_enabled(magics) and models.models:
        from kiro_lc.magics.picker import model_picker

        publish(model_picker(magics, models))


def _use(magics: KiroMagics, rest: str) -> None:
    if not rest:
        print(f"Default model: {magics.default_model}  (change it with %kiro use MODEL)")
        return
    magics.default_model = check_model(magics, rest)
    print(f"Default model: {magics.default_model}")


def _reset(magics: KiroMagics, rest: str) -> None:
    count = magics.session.conversation.reset()
    print(f"Conversation cleared ({count} turn{'s' if count != 1 else ''} forgotten).")


def _history(magics: KiroMagics, rest: str) -> None:
    from kiro_lc.magics.views import history_bundle

    turns = magics.session.conversation.turns
    _show(history_bundle(turns, len(magics.session.conversation.recent(magics.max_history))))


def set_system_prompt(magics: KiroMagics, text: str) -> None:
    """Set (or with empty text, clear) the system prompt sent with every cell."""
    magics.system_prompt = text.strip()
    if magics.system_prompt:
        print(f"System prompt set ({len(magics.system_prompt)} characters).")
    else:
        print("System prompt cleared.")


def _system(magics: KiroMagics, rest: str) -> None:
    if rest == "--clear":
        set_system_prompt(magics, "")
    elif rest:
        set_system_prompt(magics, rest)
    elif magics.system_prompt:
        print(f"System prompt:\n{magics.system_prompt}")
    else:
        print("No system prompt. Set one with %kiro system TEXT or a %%kiro system cell.")


def _status(magics: KiroMagics, rest: str) -> None:
    print(magics._auth_status())


def _usage(magics: KiroMagics, rest: str) -> None:
    from kiro_lc.magics.views import usage_bundle

    _show(usage_bundle(magics._usage_limits()))


def _fix(magics: KiroMagics, rest: str) -> None:
    from kiro_lc.magics.ask import ask

    report = last_error_report(magics.shell)
    if report is None:
        raise UsageError("No error to explain yet: run the failing cell, then %kiro fix.")
    ask(magics, parse_cell_args(rest), report.prompt(), interpolate_prompt=False)


def _debug(magics: KiroMagics, rest: str) -> None:
    failure = magics.session.last_failure
    if failure is None:
        print("No %%kiro cell has failed in this session.")
        return
    print("".join(traceback.format_exception(type(failure), failure, failure.__traceback__)))


def _help(magics: KiroMagics, rest: str) -> None:
    print(USAGE)


_HANDLERS: dict[str, Callable[[KiroMagics, str], None]] = {
    "models": _models,
    "use": _use,
    "reset": _reset,
    "history": _history,
    "system": _system,
    "status": _status,
    "usage": _usage,
    "fix": _fix,
    "debug": _debug,
    "help": _help,
}


def run(magics: KiroMagics, command: LineCommand) -> None:
    """Run a parsed ``%kiro`` subcommand."""
    _HANDLERS[command.name](magics, command.rest)
