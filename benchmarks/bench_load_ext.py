"""How long ``%load_ext kiro_lc`` takes, against IPython's own ``%load_ext autoreload``.

Each measurement runs in a fresh interpreter (cold imports, as in a new kernel): build an
``InteractiveShell``, then time ``%load_ext``. Also lists heavy modules the load must not
import (HTTP client, widgets, LangChain model code, credential code). Target: < 0.3 s.

    python benchmarks/bench_load_ext.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.3
HEAVY = (
    "httpx",
    "ipywidgets",
    "kiro_lc.chat_models",
    "kiro_lc.transport",
    "kiro_lc.auth",
    "langchain_core.language_models",
    "langchain_core.messages",
)

PROBE = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
before = set(sys.modules)
t0 = time.perf_counter()
ip.run_line_magic("load_ext", sys.argv[1])
elapsed = time.perf_counter() - t0
assert any(m.split(".")[-1] == sys.argv[1] for m in ip.extension_manager.loaded), "not loaded"
new = sorted(set(sys.modules) - before)
print(json.dumps({"seconds": elapsed, "modules": new}))
"""


ROOT_PROBE = """
import json, time
from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.instance()
t0 = time.perf_counter()
import kiro_lc
print(json.dumps({"seconds": time.perf_counter() - t0, "modules": []}))
"""


def measure(extension: str, probe: str = PROBE) -> dict[str, object]:
    """One cold ``%load_ext extension`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", probe, extension],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    ours_name = "kiro_lc"
    baseline = [float(measure("autoreload")["seconds"]) for _ in range(runs)]
    ours_runs = [measure(ours_name) for _ in range(runs)]
    ours = [float(r["seconds"]) for r in ours_runs]
    package_root = [float(measure("", ROOT_PROBE)["seconds"]) for _ in range(runs)]
    modules = set(ours_runs[-1]["modules"])  # type: ignore[call-overload]
    heavy = [m for m in HEAVY if m in modules]

    base_med, ours_med = statistics.median(baseline), statistics.median(ours)
    print(f"%load_ext autoreload (baseline): median {base_med * 1000:7.1f} ms over {runs} runs")
    print(f"%load_ext {ours_name:<21}: median {ours_med * 1000:7.1f} ms over {runs} runs")
    root_med = statistics.median(package_root)
    print(f"  of which `import kiro_lc`    : median {root_med * 1000:7.1f} ms (package root)")
    print(f"ratio kiro_lc / autoreload     : {ours_med / base_med:7.1f}x")
    verdict = "met" if ours_med < TARGET_SECONDS else "MISSED"
    print(f"target < {TARGET_SECONDS} s               : {verdict}")
    print(f"modules imported by the load   : {len(modules)}")
    print(f"heavy modules imported         : {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
