"""``%%kiro`` in JupyterLab, driven by Playwright on Debian's chromium, against a KiroEmulator.

Checks what only a browser shows: the model picker renders as a real ``<select>`` bound to the
kernel's default model, the answer grows live in the cell, and ``-f code`` inserts a cell.
Saves a screenshot to ``test-artifacts/kiro-lab.png``. Needs ``apt-get install chromium`` and
``pip install jupyterlab playwright`` (the wheel bundles its driver; no browser download).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from kiro_lc.testing import KiroEmulator, Reply

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
EXTENSION = "kiro_lc"
TOKEN = "kiro-lc-browser-test"
WORDS = " ".join(f"word{i}" for i in range(240))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

if CHROMIUM is None:
    pytest.skip(
        "no chromium binary on PATH (install Debian's: apt-get install -y chromium)",
        allow_module_level=True,
    )
for module in ("jupyterlab", "playwright"):
    if importlib.util.find_spec(module) is None:
        pytest.skip(
            f"{module} is not installed (pip install jupyterlab playwright)",
            allow_module_level=True,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_notebook(path: Path) -> None:
    cells = [
        f"%load_ext {EXTENSION}\n%config KiroMagics.stream_interval = 0.1",
        "%kiro models",
        "%%kiro\nWrite 240 words, **slowly**.",
        "%%kiro -f code\nPrint hi",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def lab_env(emu: KiroEmulator, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRO_")}
    env.update(emu.env())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    settings = home / "lab-settings"
    notification = (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"autoStartDefaultKernel": True}))
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
    )
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KiroEmulator]]:
    home = tmp_path_factory.mktemp("lab")
    write_notebook(home / "kiro.ipynb")
    port = free_port()
    with KiroEmulator() as emu:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.root_dir={home}",
                "--expose-app-in-browser",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            env=lab_env(emu, home),
            stdout=subprocess.DEVNULL,
            stderr=(home / "lab.log").open("wb"),
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError((home / "lab.log").read_text()[-2000:]) from None
                    time.sleep(0.3)
            yield base, emu
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


KERNEL_IDLE = """() => {
  const widget = window.jupyterapp?.shell.currentWidget;
  return widget?.sessionContext?.session?.kernel?.status === "idle";
}"""
KERNEL_DEFAULT_MODEL = """async () => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({
    code: "print(get_ipython().magics_manager.registry['KiroMagics'].default_model)"});
  let out = "";
  future.onIOPub = (msg) => { if (msg.header.msg_type === "stream") out += msg.content.text; };
  await future.done;
  return out.trim();
}"""


def test_lab_streams_the_answer_and_renders_the_picker(
    lab: tuple[str, KiroEmulator], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, emu = lab
    emu.script(
        Reply.text(WORDS + " **done**", chunk_size=8, delay_between=0.03),  # ~7 s of streaming
        Reply.text("Sure:\n```python\nprint('hi')\n```\n"),
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 1000},
        )
        try:
            page = context.new_page()
            page.goto(f"{base}/lab/tree/kiro.ipynb?token={TOKEN}")
            page.wait_for_function(KERNEL_IDLE, timeout=45_000)
            # Do not return the promise: Playwright would wait for the whole run.
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

            answer = ".jp-Notebook .jp-Cell:nth-child(3) .jp-OutputArea .jp-RenderedMarkdown"
            grown = f"(document.querySelector({json.dumps(answer)})?.innerText ?? '')"
            page.wait_for_function(f"{grown}.includes('word1')", timeout=30_000)
            lengths = []
            for _ in range(8):
                lengths.append(len(page.inner_text(answer)))
                page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / "kiro-lab-streaming.png"))
            assert lengths == sorted(lengths), lengths
            assert lengths[0] < lengths[-1], lengths

            select = ".jp-Notebook .jp-Cell:nth-child(2) .widget-dropdown select"
            options = page.eval_on_selector_all(
                f"{select} option", "els => els.map(e => e.value || e.textContent)"
            )
            assert len(options) >= 3
            assert page.eval_on_selector(select, "el => el.tagName") == "SELECT"

            page.wait_for_function(
                "document.querySelectorAll('.jp-Notebook .jp-CodeCell').length >= 5",
                timeout=30_000,
            )
            assert "word239 done\n\nclaude-sonnet-4.5 · " in page.inner_text(answer)  # + footer
            assert page.eval_on_selector(f"{answer} strong", "el => el.textContent") == "done"

            labels = page.eval_on_selector_all(
                f"{select} option", "els => els.map(e => e.textContent)"
            )
            haiku = next(label for label in labels if label.startswith("claude-haiku-4.5"))
            page.select_option(select, label=haiku)
            page.wait_for_timeout(500)
            assert page.evaluate(KERNEL_DEFAULT_MODEL) == "claude-haiku-4.5"

            page.screenshot(path=str(ARTIFACTS / "kiro-lab.png"))
            page.locator(".jp-Notebook .jp-CodeCell").last.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "kiro-lab-end.png"))
            print(f"\nanswer length over time: {lengths}\nscreenshot: {ARTIFACTS / 'kiro-lab.png'}")
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "kiro-lab-failure.png"), full_page=True)
            raise
        finally:
            context.close()
