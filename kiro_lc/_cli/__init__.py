"""The subcommands of ``kiro-lc`` (the parser and entry point live in :mod:`kiro_lc.cli`).

Each module declares its subcommands with ``add_<name>(subparsers)`` and runs them with
``run_<name>(args) -> int``; heavy imports (LangChain, httpx) happen inside the ``run_``
functions so that ``kiro-lc --help`` stays instant.
"""
