"""Every sample in README.md and docs/*.md runs, against a KiroEmulator, so the docs cannot rot.

How fenced blocks run (the convention every doc writer follows)
================================================================

Each ``*.md`` file runs on its own: a fresh ``KiroEmulator`` (default responder, nothing
scripted), the ``KIRO_*`` variables of ``emu.env()`` (its API key, its URLs), an empty HOME that
is also the working directory, so no real credential is read and nothing real is written.
Blocks run top to bottom; the first failure stops the file. The fence's info string picks the
runner:

``python``
    Executed in-process; all python blocks of a file share one namespace, like notebook cells.
    Top-level ``await`` works. A block whose first line starts with ``>>>`` is a doctest instead:
    its shown output is compared (``ELLIPSIS`` and ``NORMALIZE_WHITESPACE`` on). The namespace
    holds no emulator: a sample that needs scripted replies starts its own ``KiroEmulator``,
    as a reader would; plain ``ChatKiro()`` samples reach the file's emulator through the env.
``pycon``
    Always a doctest (same namespace as the python blocks).
``ipython``
    One notebook cell per block (``%load_ext kiro_lc``, ``%%kiro ...``), run with
    ``InteractiveShell.run_cell`` in one shell per file; the cell must not raise. It shares the
    python blocks' namespace: a function defined in a python block is there for ``--tools``.
``console``
    Lines starting with ``$ `` are commands; the lines after a command, up to the next ``$ ``,
    are its shown output, matched against stdout + stderr with doctest's ``ELLIPSIS`` (``...``
    matches anything) and ``NORMALIZE_WHITESPACE``. No shown output: not checked.
``bash`` / ``sh`` / ``shell``
    Every line that is not blank or a ``#`` comment is a command (a trailing ``\\`` continues it).
    No multi-line constructs (loops, heredocs) in samples.

    Commands (console and bash alike) run in ``bash -c`` with ``kiro-lc`` on PATH (this working
    tree's CLI) and stdin empty. They must exit 0, unless the line ends with ``# exit N``.
    ``export NAME=value`` commands apply to the later commands of the same file.
any language with ``file=NAME`` after it (```` ```python file=test_agent.py ````)
    Not run: written to ``NAME`` in the working directory, for later commands to use (e.g.
    ``$ python -m pytest -q test_agent.py``) or to show a config file.
``text``, ``output``, ``plaintext``, ``toml``, ``ini``, ``diff``
    Shown, never run: for outputs, error messages, file contents. Put no commands in them.
``json``
    Must parse with ``json.loads`` (use ``text`` for JSON with ``...`` in it).
no info string
    An error (label every fence) — except the block right after ``<!-- test-command -->`` in the
    README, which must hold exactly ``python -m pytest``: the command that runs this test.

Samples that genuinely cannot run offline are listed in :data:`NOT_RUNNABLE` with the reason,
keyed by a file pattern (``fnmatch``, lower case) and a piece of the block (or of the command,
for shell blocks).
:func:`test_not_runnable_entries_still_match` fails when an entry matches nothing, so the list
cannot hide samples that no longer exist.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import doctest
import fnmatch
import inspect
import io
import json
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from kiro_lc.testing import KiroEmulator

REPO = Path(__file__).resolve().parents[1]
TEST_COMMAND_MARKER = "<!-- test-command -->"
TEST_COMMAND = "python -m pytest"
INSTALL_AND_RUN = "pip install -e . && kiro-lc demo"

PYTHON = {"python", "py"}
DOCTEST = {"pycon"}
IPYTHON = {"ipython"}
CONSOLE = {"console"}
SCRIPT = {"bash", "sh", "shell"}
SHOWN = {"text", "output", "plaintext", "toml", "ini", "diff"}
JSON = {"json"}
KNOWN = PYTHON | DOCTEST | IPYTHON | CONSOLE | SCRIPT | SHOWN | JSON | {"test-command"}

_PIP = "installs kiro-lc from the package index; CI runs it before the tests"
_LOGIN = "kiro-cli signs in to (or out of) a real Kiro account in a browser"
NOT_RUNNABLE: dict[tuple[str, str], str] = {
    ("*readme*", "pip install"): _PIP,
    ("docs/getting-started.md", "pip install"): _PIP,
    ("docs/*.md", "kiro-cli log"): _LOGIN,
    ("docs/getting-started.md", "jupyter lab"): "starts a notebook server in the foreground",
    ("docs/testing.md", "kiro-lc emulator"): (
        "runs in the foreground until Ctrl-C; tests/test_cli_emulator.py covers it"
    ),
    ("docs/architecture.md", "class EventStreamMessage:"): "a signature sketch, not code",
    ("docs/architecture.md", "request_to_json(req: ConversationRequest)"): (
        "a signature sketch, not code"
    ),
    ("docs/architecture.md", "class Credentials:"): "a signature sketch, not code",
    ("docs/architecture.md", "class KiroTransport / AsyncKiroTransport:"): (
        "a signature sketch, not code"
    ),
    ("docs/architecture.md", 'kind="social" | "oidc" | "external_idp"'): (
        "a signature sketch, not code"
    ),
}


# ---------------------------------------------------------------------------------------------
# Finding the blocks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One fenced block: its file (relative to the repo), 1-based fence line, language, text,
    and the ``file=NAME`` of its info string (``""`` when absent)."""

    path: str
    line: int
    lang: str
    text: str
    file: str = ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def doc_files() -> list[Path]:
    """README.md and every docs/*.md that exists now."""
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return [f for f in files if f.is_file()]


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of ``path``; the test-command block gets the language ``test-command``."""
    rel = path.relative_to(REPO).as_posix()
    blocks: list[Block] = []
    previous = ""
    for token in MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8")):
        if token.type == "fence" and token.map is not None:
            words = token.info.split()
            lang = words[0].lower() if words else ""
            if not lang and previous.strip() == TEST_COMMAND_MARKER:
                lang = "test-command"
            file = next((w[5:] for w in words[1:] if w.startswith("file=")), "")
            blocks.append(Block(rel, token.map[0] + 1, lang, token.content, file))
        if token.map is not None:
            previous = token.content if token.type == "html_block" else ""
    return blocks


@dataclass(frozen=True)
class Command:
    """One shell command of a console/bash block, with the output the doc shows for it."""

    text: str
    line: int
    shown: str
    exit_code: int


_EXIT_COMMENT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


def _command(text: str, line: int, shown: str = "") -> Command:
    match = _EXIT_COMMENT.search(text)
    code = int(match[1]) if match else 0
    return Command(_EXIT_COMMENT.sub("", text).strip(), line, shown, code)


def commands_of(block: Block) -> list[Command]:
    """The commands of a ``console`` or ``bash`` block (see the module docstring)."""
    lines = block.text.splitlines()
    out: list[Command] = []
    if block.lang in CONSOLE:
        current: tuple[str, int] | None = None
        shown: list[str] = []
        for i, raw in enumerate(lines):
            if raw.startswith("$ "):
                if current:
                    out.append(_command(current[0], current[1], "\n".join(shown)))
                current, shown = (raw[2:], block.line + 1 + i), []
            elif current:
                shown.append(raw)
        if current:
            out.append(_command(current[0], current[1], "\n".join(shown)))
        return out
    pending = ""
    for i, raw in enumerate(lines):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        pending += stripped[:-1].rstrip() + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            out.append(_command(pending, block.line + 1 + i))
            pending = ""
    return out


def not_runnable(path: str, text: str) -> str | None:
    """The reason ``text`` (a block or a command of ``path``) cannot run, if it is listed."""
    for (pattern, piece), reason in NOT_RUNNABLE.items():
        if fnmatch.fnmatch(path.lower(), pattern) and piece in text:
            return reason
    return None


# ---------------------------------------------------------------------------------------------
# Running them
# ---------------------------------------------------------------------------------------------


class SampleFailed(Exception):
    """A doc sample failed; the message says where and how."""


class DocRun:
    """Runs the blocks of one file in order (shared namespace, shell and exports)."""

    def __init__(self, home: Path, env: dict[str, str], bin_dir: Path) -> None:
        self.home = home
        self.env = env
        self.bin_dir = bin_dir
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        self.exports: list[str] = []
        self._shell: Any = None

    def run(self, block: Block) -> None:
        if block.file:
            target = self.home / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        elif block.lang in PYTHON:
            self.python(block)
        elif block.lang in DOCTEST:
            self.doctest(block)
        elif block.lang in IPYTHON:
            self.ipython(block)
        elif block.lang in CONSOLE | SCRIPT:
            for command in commands_of(block):
                if not_runnable(block.path, command.text) is None:
                    self.shell(block, command)
        elif block.lang in JSON:
            self.json(block)
        elif block.lang == "test-command" and block.text.strip() != TEST_COMMAND:
            raise SampleFailed(f"{block.where}: the test command must be {TEST_COMMAND!r}")

    # -- python -------------------------------------------------------------------------------

    def python(self, block: Block) -> None:
        if block.text.lstrip().startswith(">>>"):
            self.doctest(block)
            return
        source = "\n" * block.line + block.text  # tracebacks show the doc's line numbers
        printed = io.StringIO()
        try:
            code = compile(source, block.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            with contextlib.redirect_stdout(printed):
                result = eval(code, self.namespace)
                if inspect.iscoroutine(result):
                    asyncio.run(result)
        except Exception:
            raise SampleFailed(
                f"{block.where}: python block raised\n{traceback.format_exc()}"
                f"printed:\n{printed.getvalue()}"
            ) from None

    def doctest(self, block: Block) -> None:
        test = doctest.DocTestParser().get_doctest(
            block.text, self.namespace, block.where, block.path, block.line
        )
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=flags)
        result = runner.run(test, out=report.write, clear_globs=False)
        self.namespace.update(test.globs)  # DocTest runs in a copy of the namespace
        if result.failed:
            raise SampleFailed(f"{block.where}: doctest failed\n{report.getvalue()}")

    def json(self, block: Block) -> None:
        try:
            json.loads(block.text)
        except ValueError as exc:
            raise SampleFailed(f"{block.where}: json block does not parse: {exc}") from None

    # -- ipython ------------------------------------------------------------------------------

    def ipython(self, block: Block) -> None:
        from IPython.utils.capture import capture_output

        shell = self._ipython_shell()
        with capture_output() as captured:
            result = shell.run_cell(block.text, store_history=False)
        if not result.success:
            error = result.error_in_exec or result.error_before_exec
            raise SampleFailed(
                f"{block.where}: ipython cell failed: {type(error).__name__}: {error}\n"
                f"stdout:\n{captured.stdout}\nstderr:\n{captured.stderr}"
            )

    def _ipython_shell(self) -> Any:
        if self._shell is None:
            from IPython.core.interactiveshell import InteractiveShell
            from traitlets.config import Config

            config = Config({"HistoryManager": {"hist_file": ":memory:"}})
            self._shell = InteractiveShell.instance(config=config)
            # python and ipython blocks share one namespace: from now on, the shell's
            self._shell.user_ns.update(self.namespace)
            self.namespace = self._shell.user_ns
        return self._shell

    def close(self) -> None:
        shell = self._shell
        if shell is None:
            return
        with contextlib.suppress(Exception):
            shell.extension_manager.unload_extension("kiro_lc")
        shell.config.pop("KiroMagics", None)
        shell.reset(new_session=False)

    # -- shell --------------------------------------------------------------------------------

    def shell(self, block: Block, command: Command) -> None:
        where = f"{block.path}:{command.line}"
        if command.text.startswith("export "):
            self.exports.append(command.text)
            return
        script = "\n".join([*self.exports, command.text])
        try:
            proc = subprocess.run(
                ["bash", "-c", script],
                cwd=self.home,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                encoding="utf-8",
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            raise SampleFailed(f"{where}: `{command.text}` did not finish in 120 s") from None
        output = proc.stdout + proc.stderr
        if proc.returncode != command.exit_code:
            raise SampleFailed(
                f"{where}: `{command.text}` exited {proc.returncode}, the doc expects "
                f"{command.exit_code}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        want = command.shown.strip() + "\n"
        if command.shown.strip() and not doctest.OutputChecker().check_output(
            want, output.strip() + "\n", flags
        ):
            raise SampleFailed(
                f"{where}: `{command.text}` printed something else than the doc shows\n"
                f"doc:\n{command.shown}\nactual:\n{output}"
            )


def _kiro_lc_on_path(bin_dir: Path) -> None:
    """A ``kiro-lc`` executable that runs this working tree's CLI with this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "kiro-lc"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m kiro_lc.cli "$@"\n')
    script.chmod(0o755)


@pytest.fixture
def doc_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, dict[str, str], Path]]:
    """The environment of one file's run (see the module docstring)."""
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    _kiro_lc_on_path(bin_dir)
    saved_environ = dict(os.environ)
    with KiroEmulator() as emu:
        for name in list(os.environ):
            if name.startswith("KIRO_"):
                monkeypatch.delenv(name)
        for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "APPDATA", "LOCALAPPDATA"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", str(home))
        for name, value in emu.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(home)
        path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PATH": path, "PYTHONPATH": pythonpath, "NO_COLOR": "1"}
        try:
            yield home, env, bin_dir
        finally:
            os.environ.clear()
            os.environ.update(saved_environ)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_doc_samples_run(path: Path, doc_env: tuple[Path, dict[str, str], Path]) -> None:
    blocks = blocks_of(path)
    unknown = [f"{b.where} ```{b.lang or '(no language)'}" for b in blocks if b.lang not in KNOWN]
    assert not unknown, f"fences without a runner (see tests/test_docs.py): {unknown}"
    home, env, bin_dir = doc_env
    run = DocRun(home, env, bin_dir)
    failure = ""
    try:
        for block in blocks:
            if block.lang in CONSOLE | SCRIPT or not_runnable(block.path, block.text) is None:
                run.run(block)
    except SampleFailed as exc:
        failure = str(exc)
    finally:
        run.close()
    if failure:
        pytest.fail(failure, pytrace=False)


def test_not_runnable_entries_still_match() -> None:
    texts: dict[str, list[str]] = {}
    for path in doc_files():
        for block in blocks_of(path):
            pieces = texts.setdefault(block.path, [])
            if block.lang in CONSOLE | SCRIPT:
                pieces.extend(c.text for c in commands_of(block))
            else:
                pieces.append(block.text)
    stale = [
        (pattern, piece)
        for pattern, piece in NOT_RUNNABLE
        if not any(
            piece in text
            for path, pieces in texts.items()
            if fnmatch.fnmatch(path.lower(), pattern)
            for text in pieces
        )
    ]
    assert not stale, f"NOT_RUNNABLE entries that match no sample any more: {stale}"


READMES = [n for n in ("README.md", "docs/_readme_draft.md") if (REPO / n).is_file()]


@pytest.mark.parametrize("name", READMES)
def test_readme_keeps_the_test_command_and_the_install_command(name: str) -> None:
    path = REPO / name
    blocks = blocks_of(path)
    assert [b.text.strip() for b in blocks if b.lang == "test-command"] == [TEST_COMMAND]
    text = path.read_text(encoding="utf-8")
    assert f"{TEST_COMMAND_MARKER}\n```\n{TEST_COMMAND}\n```" in text
    if name == "docs/_readme_draft.md" or INSTALL_AND_RUN in text:
        assert INSTALL_AND_RUN in text


def test_the_block_parser_and_the_command_splitter() -> None:
    block = Block(
        "x.md",
        10,
        "console",
        "$ kiro-lc status   # exit 1\nkiro-lc: No Kiro credentials found...\n$ echo a\na\n",
    )
    first, second = commands_of(block)
    assert (first.text, first.exit_code, first.line) == ("kiro-lc status", 1, 11)
    assert first.shown == "kiro-lc: No Kiro credentials found..."
    assert (second.text, second.shown) == ("echo a", "a")
    script = Block(
        "x.md", 1, "bash", "# comment\nkiro-lc chat \\\n  -m haiku hi\n\nkiro-lc usage\n"
    )
    assert [c.text for c in commands_of(script)] == ["kiro-lc chat -m haiku hi", "kiro-lc usage"]


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (Block("x.md", 3, "python", "1 / 0\n"), "x.md:3: python block raised"),
        (Block("x.md", 3, "pycon", ">>> 1 + 1\n3\n"), "doctest failed"),
        (Block("x.md", 3, "console", "$ echo hello\ngoodbye\n"), "printed something else"),
        (Block("x.md", 3, "bash", "false\n"), "exited 1, the doc expects 0"),
        (Block("x.md", 3, "bash", "true   # exit 1\n"), "exited 0, the doc expects 1"),
        (Block("x.md", 3, "json", "{...}\n"), "does not parse"),
        (Block("x.md", 3, "ipython", "%%bogus_magic\nhi\n"), "ipython cell failed"),
        (Block("x.md", 3, "test-command", "pytest\n"), "must be 'python -m pytest'"),
    ],
)
def test_the_runner_catches_rotten_samples(
    block: Block, expected: str, doc_env: tuple[Path, dict[str, str], Path]
) -> None:
    run = DocRun(*doc_env)
    try:
        with pytest.raises(SampleFailed, match=re.escape(expected)):
            run.run(block)
    finally:
        run.close()


def test_the_runner_shares_state_and_writes_files(
    doc_env: tuple[Path, dict[str, str], Path],
) -> None:
    home = doc_env[0]
    run = DocRun(*doc_env)
    try:
        run.run(Block("x.md", 1, "python", "answer = 6 * 7\n"))
        run.run(Block("x.md", 5, "pycon", ">>> answer\n42\n>>> later = answer + 1\n"))
        run.run(
            Block("x.md", 9, "python", "assert later == 43\nawait __import__('asyncio').sleep(0)\n")
        )
        run.run(Block("x.md", 12, "python", "print('hi')\n", file="sub/hello.py"))
        run.run(Block("x.md", 15, "bash", "export GREETING=hello\n"))
        run.run(Block("x.md", 17, "console", "$ echo $GREETING; python sub/hello.py\nhello\nhi\n"))
        run.run(
            Block(
                "x.md", 20, "console", "$ kiro-lc chat hi\nHello from the Kiro emulator (...).\n..."
            )
        )
    finally:
        run.close()
    assert (home / "sub" / "hello.py").read_text() == "print('hi')\n"


def test_python_and_ipython_blocks_share_a_namespace(
    doc_env: tuple[Path, dict[str, str], Path],
) -> None:
    run = DocRun(*doc_env)
    try:
        run.run(Block("x.md", 1, "python", "def word_count(text: str) -> int:\n    return 2\n"))
        run.run(Block("x.md", 4, "ipython", "%load_ext kiro_lc"))
        run.run(Block("x.md", 6, "ipython", "n = word_count('a b')\n"))
        run.run(Block("x.md", 8, "python", "assert n == 2\n"))
    finally:
        run.close()
