"""The ``kiro-lc`` command line: parser, entry point and exit codes.

Each subcommand is two small functions: an ``add`` function declares its arguments and a ``run``
function (``args -> int``) runs it; :data:`_SUBCOMMANDS` lists the declarers. ``emulator`` and
``demo`` live here; the Kiro commands live in :mod:`kiro_lc._cli`:

``kiro-lc status`` / ``models`` / ``usage``  (:mod:`kiro_lc._cli.account`)
    Credentials summary (never a token); the live model list; credits used and left.
``kiro-lc chat [-m MODEL] [--system TEXT] [PROMPT]``  (:mod:`kiro_lc._cli.chat`)
    Stream an answer; stdin prompt; interactive chat on a terminal.
``kiro-lc emulator [--port N] [--host H]``
    Run :class:`kiro_lc.testing.KiroEmulator` in the foreground, print its URLs and the
    ``export KIRO_...=`` lines that point kiro-lc at it, stop cleanly on Ctrl-C.
``kiro-lc demo``
    A scripted tour of the real stack against an in-process emulator (:mod:`kiro_lc.demo`).

Exit codes: 0 success, 1 a Kiro or API error (one actionable message on stderr; the traceback
only with ``--debug``), 2 a usage error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from kiro_lc._cli.account import add_models, add_status, add_usage
from kiro_lc._cli.chat import add_chat
from kiro_lc._cli.output import UsageProblem, error_text, tolerant
from kiro_lc._version import __version__

if TYPE_CHECKING:
    from kiro_lc._cli.output import Subparsers

Handler = Callable[[argparse.Namespace], int]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# ---------------------------------------------------------------------------------------------
# kiro-lc emulator
# ---------------------------------------------------------------------------------------------


def _add_emulator(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        parents=parents,
        help="run a local Kiro emulator for tests and offline demos",
        description=(
            "Run KiroEmulator, a wire-faithful fake Kiro, until Ctrl-C. Its API key is a fake "
            "credential minted for this run; it is only valid against this emulator."
        ),
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every request (never its tokens)"
    )
    parser.set_defaults(handler=_cmd_emulator)


def _shell_quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:@%+=," for c in value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _cmd_emulator(args: argparse.Namespace) -> int:
    from kiro_lc.testing import KiroEmulator

    if args.verbose:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
        logging.getLogger("kiro_lc.testing").setLevel(logging.DEBUG)
    try:
        emu = KiroEmulator(host=args.host, port=args.port).start()
    except OSError as exc:
        print(
            f"kiro-lc emulator: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}). "
            "Pick another --port, or --port 0 for any free port.",
            file=sys.stderr,
        )
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if in_main else None
    try:
        _print_banner(emu.base_url, emu.env())
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        emu.stop()
    print("Kiro emulator stopped.", flush=True)
    return 0


def _print_banner(base_url: str, env: dict[str, str]) -> None:
    lines = [
        f"Kiro emulator listening on {base_url}",
        f"  API (awsJson + REST):   {base_url}/",
        f"  Kiro desktop refresh:   {base_url}/refreshToken",
        f"  SSO OIDC CreateToken:   {base_url}/token",
        "",
        "Point kiro-lc at it (the API key is a fake one, valid only here):",
        *(f"export {name}={_shell_quote(value)}" for name, value in sorted(env.items())),
        "",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------------------------------------
# kiro-lc demo
# ---------------------------------------------------------------------------------------------


def _add_demo(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=parents,
        help="see kiro-lc work end to end, offline, without a Kiro account",
        description=(
            "Start a local Kiro emulator and take a short tour through the real kiro-lc stack: "
            "a streamed answer, a tool call, usage and credits. The answers are scripted by the "
            "emulator; nothing leaves this machine and no Kiro account is needed."
        ),
    )
    parser.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from kiro_lc.demo import run_demo

    return run_demo(tolerant(sys.stdout))


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------

_SUBCOMMANDS: tuple[Callable[[Subparsers, list[argparse.ArgumentParser]], None], ...] = (
    add_status,
    add_models,
    add_chat,
    add_usage,
    _add_emulator,
    _add_demo,
)


def _debug_flag(default: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="log HTTP calls (never headers or bodies) and show tracebacks",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``kiro-lc`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="kiro-lc",
        description="Use the Claude models of your Kiro account from the shell.",
        epilog='New here? Run `kiro-lc demo`, then `kiro-lc status` and `kiro-lc chat "hello"`.',
        parents=[_debug_flag(False)],
    )
    parser.add_argument("--version", action="version", version=f"kiro-lc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    # SUPPRESS: `kiro-lc --debug chat` must not be reset by the subcommand's own default
    parents = [_debug_flag(argparse.SUPPRESS)]
    for add in _SUBCOMMANDS:
        add(subparsers, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kiro-lc``; returns the process exit status (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    if args.debug:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("kiro_lc").setLevel(logging.DEBUG)
    return _run(handler, args, parser)


def _run(handler: Handler, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from kiro_lc.errors import KiroError

    try:
        return handler(args)
    except UsageProblem as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KiroError as exc:
        if args.debug:
            traceback.print_exc()
        print(error_text(exc), file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `kiro-lc chat ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(
            f"kiro-lc: unexpected {type(exc).__name__}: {exc}\n"
            "This is a kiro-lc bug: please report it with the output of `kiro-lc --debug ...`.",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
