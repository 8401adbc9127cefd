"""The ``kiro-lc`` command line.

Each subcommand is two small functions: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args) -> int`` runs it; :data:`_SUBCOMMANDS` lists the declarers. Today:

``kiro-lc emulator [--port N] [--host H]``
    Run :class:`kiro_lc.testing.KiroEmulator` in the foreground, print its URLs and the
    ``export KIRO_...=`` lines that point kiro-lc at it, stop cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from kiro_lc._version import __version__

Handler = Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------------
# kiro-lc emulator
# ---------------------------------------------------------------------------------------------


def _add_emulator(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator",
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
# entry point
# ---------------------------------------------------------------------------------------------

_SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_emulator,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``kiro-lc`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="kiro-lc", description="Use the Claude models of your Kiro account from the shell."
    )
    parser.add_argument("--version", action="version", version=f"kiro-lc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kiro-lc``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
