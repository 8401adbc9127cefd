"""Run every benchmark in this folder, one after another, and report which ones missed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    """Run each ``bench_*.py`` with the current interpreter; exit non-zero if any failed."""
    here = Path(__file__).resolve().parent
    failed = []
    for script in sorted(here.glob("bench_*.py")):
        print(f"\n===== {script.name}", flush=True)
        if subprocess.call([sys.executable, str(script), *sys.argv[1:]]) != 0:
            failed.append(script.name)
    print("\nall benchmarks ran" if not failed else f"\nfailed or missed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
