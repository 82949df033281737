"""P7: process time of ``python -c "import tracelet_artifacts"`` ÷ ``python -c "import json"``.

Both run as fresh subprocesses of the same interpreter, alternating, and the minimum of ``--runs`` runs
of each is compared (the minimum is the least noisy estimate of the real cost). Target: ratio ≤ 3.
``from tracelet_artifacts import Experiment`` (which loads the store, routing and delivery modules)
is printed as well, for honesty: it is what a training script pays on first use.

    python benchmarks/p7_import_time.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 3.0
CASES = {
    "import json": "import json",
    "import tracelet_artifacts": "import tracelet_artifacts",
    "from tracelet_artifacts import Experiment": "from tracelet_artifacts import Experiment",
}


def run_once(code: str, env: dict[str, str]) -> float:
    """Wall-clock seconds of one fresh interpreter running ``code``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs of each command (default 20)")
    args = parser.parse_args()

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    for code in CASES.values():  # warm the page cache and write .pyc files before timing
        run_once(code, env)

    times: dict[str, list[float]] = {label: [] for label in CASES}
    for _ in range(args.runs):
        for label, code in CASES.items():  # interleaved, so drift in machine load hits all alike
            times[label].append(run_once(code, env))

    best = {label: min(values) for label, values in times.items()}
    baseline = best["import json"]
    print(f"P7 import time — {sys.executable} (Python {sys.version.split()[0]}), min of {args.runs} runs each")
    for label in CASES:
        print(f"  {label:<45} {best[label] * 1000:8.1f} ms")
    ratio = best["import tracelet_artifacts"] / baseline
    status = "PASS" if ratio <= TARGET else "MISS"
    print(f"  ratio import tracelet_artifacts / import json   {ratio:6.2f}x   target ≤ {TARGET:.0f}x   {status}")
    full = best["from tracelet_artifacts import Experiment"] / baseline
    print(f"  ratio from tracelet_artifacts import Experiment / import json   {full:6.2f}x   "
          "(not a target; for honesty)")


if __name__ == "__main__":
    main()
