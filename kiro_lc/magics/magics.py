"""``KiroMagics``: the ``%kiro`` / ``%%kiro`` entry point and its ``%config`` options.

Thin on purpose: it parses the line, then hands over to :mod:`~kiro_lc.magics.ask` (cells)
or :mod:`~kiro_lc.magics.commands` (subcommands). Importing this module loads no HTTP client,
no widgets and no LangChain model code; those come with the first ``%%kiro`` cell.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, CFloat, CInt, Enum, Float, Int, Unicode

from kiro_lc.magics.arguments import FORMATS, USAGE, parse_cell_args, parse_line, subcommand_of
from kiro_lc.magics.session import KiroSession

__all__ = ["DEFAULT_MODEL", "KiroMagics"]

#: Used when neither ``-m``, ``%kiro use``, the picker nor ``%config`` chose a model.
DEFAULT_MODEL = "claude-sonnet-4.5"


@magics_class
class KiroMagics(Magics):
    """Ask the Claude models of your Kiro account from notebook cells (``%%kiro``)."""

    default_model = Unicode(
        DEFAULT_MODEL,
        help="Model for cells without -m: a backend id or alias (sonnet, haiku, auto).",
    ).tag(config=True)
    default_format = Enum(
        FORMATS, default_value="markdown", help="Answer format for cells without -f."
    ).tag(config=True)
    max_history = Int(
        10, min=0, help="Previous exchanges sent with each prompt (0: every cell stands alone)."
    ).tag(config=True)
    stream_interval = Float(
        0.1, min=0.0, help="Seconds between display updates while streaming (0: final answer only)."
    ).tag(config=True)
    system_prompt = Unicode("", help="System prompt for every cell (%%kiro system sets it).").tag(
        config=True
    )
    show_usage = Bool(
        True, help="Add a footer line: model · credits · context used · seconds."
    ).tag(config=True)
    widgets = Enum(
        ("auto", "on", "off"),
        default_value="auto",
        help="Show the model picker (auto: in kernels).",
    ).tag(config=True)
    renderer = Enum(
        ("auto", "notebook", "terminal"),
        default_value="auto",
        help="notebook: live display updates; terminal: plain text to stdout; auto: by frontend.",
    ).tag(config=True)
    temperature = CFloat(
        None, allow_none=True, help="Sampling temperature for cells without -t (None: model's)."
    ).tag(config=True)
    max_tokens = CInt(
        None, allow_none=True, help="Cap on answer tokens for cells without --max-tokens."
    ).tag(config=True)
    max_tool_rounds = Int(
        8, min=1, help="With --tools: how many rounds of tool calls before the cell stops."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session = KiroSession()

    @property
    def ip(self) -> InteractiveShell:
        """The shell this instance is registered with."""
        if self.shell is None:
            raise UsageError("KiroMagics is not attached to an IPython shell.")
        return self.shell

    @no_var_expand
    @line_cell_magic
    def kiro(self, line: str, cell: str | None = None) -> None:
        from kiro_lc.magics import commands

        if cell is None:
            commands.run(self, parse_line(line))
            return
        command = subcommand_of(line)
        if command is None:
            from kiro_lc.magics.ask import ask

            ask(self, parse_cell_args(line), cell)
        elif command.name == "system":
            commands.set_system_prompt(self, cell)
        else:
            raise UsageError(
                f"%%kiro {command.name} takes no cell body; "
                f"use the line magic `%kiro {command.name}`."
            )

    kiro.__doc__ = USAGE

    def _make_model(self, **kwargs: Any) -> Any:
        """Build the chat model for a cell (the one seam for swapping the model class).

        Credentials and the endpoint come from ChatKiro's usual sources (``KIRO_*`` variables,
        the kiro-cli database, ...), read on first use, never at ``%load_ext``.
        """
        from kiro_lc.chat_models import ChatKiro

        return ChatKiro(**kwargs)

    def _list_models(self) -> Any:
        """The account's ``ModelList`` (ListAvailableModels)."""
        return self.session.model(self, model=self.default_model).list_models()

    def _usage_limits(self) -> Any:
        """The account's ``UsageLimits`` (GetUsageLimits)."""
        return self.session.model(self, model=self.default_model).get_usage_limits()

    def _auth_status(self) -> str:
        """The credentials summary of ``kiro-lc status`` (never a token)."""
        from kiro_lc.auth import KiroAuth, format_status

        return format_status(KiroAuth().status())

    def close(self) -> None:
        """Release the cached model clients and the picker (called on unload)."""
        self.session.close()
