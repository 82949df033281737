"""P1: ``torch.save`` of a ~200 MB state dict with the capture on ÷ plain ``torch.save``. Target: ≤ 1.05.

Side by side in one process, alternating which goes first in each repetition: the plain run calls the
original ``torch.save`` (the function object taken before the capture was enabled, inside ``suppressed()``,
since an early-bound ``save`` is captured too), the captured run calls
the patched ``torch.save`` with a TorchSaveCapture on an embedded store in the same folder (so staging is
a hard link). One tensor changes before every repetition, so each capture is a real new version (hashed
and copied into the store), not a de-duplicated one. Between repetitions the capture is flushed and the
page cache written back (``os.sync``), so neither side pays for the other's background work.

Printed: the median of each side, their ratio against the target, the time from ``torch.save`` returning
until the version is in the store, and how often a save waited for the previous capture of its file
(0 expected: the ordinary case never waits). A second, smaller section re-saves the same path back to
back with no work in between — the case where the wait does happen — and prints what it costs; another
times 100 saves of a 1 KB object each way, to show the fixed cost the capture adds on the caller's thread.

    python benchmarks/p1_torch_save.py [--mb 200] [--reps 9] [--dir /path/on/disk] [--no-back-to-back]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks.torch_save import TorchSaveCapture, suppressed
from tracelet_artifacts.settings import TraceletSettings

TARGET_RATIO = 1.05
TENSORS = 50


def state_dict(megabytes: int) -> dict[str, torch.Tensor]:
    per_tensor = megabytes * 1024 * 1024 // 4 // TENSORS
    generator = torch.Generator().manual_seed(0)
    return {f"layer{i}.weight": torch.randn(per_tensor, generator=generator) for i in range(TENSORS)}


def timed(save: Callable[..., Any], obj: Any, path: str) -> float:
    started = time.perf_counter()
    save(obj, path)
    return time.perf_counter() - started


def settle(capture: TorchSaveCapture) -> float:
    """Wait until the capture is stored; seconds waited."""
    started = time.perf_counter()
    if not capture.flush(600):
        raise RuntimeError("the capture did not reach the store within 600 s")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="state dict size in MB (default 200)")
    parser.add_argument("--reps", type=int, default=9, help="repetitions per side (default 9)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a new temp folder)")
    parser.add_argument("--no-back-to-back", action="store_true", help="skip the back-to-back re-save section")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="p1-torch-save-", dir=args.dir))
    os.chdir(work)
    original_save = torch.save  # the original, before any capture

    def plain_save(obj: Any, path: str) -> None:
        # An early-bound original is captured too (through the writer torch.save opens); the plain side is not.
        with suppressed():
            original_save(obj, path)

    weights = state_dict(args.mb)
    size_mb = sum(t.numel() * t.element_size() for t in weights.values()) / 2**20
    experiment = Experiment("p1", settings=TraceletSettings(store_path=work / ".tracelet")).start()
    capture = TorchSaveCapture(experiment).enable()
    print(f"P1 torch.save capture: {size_mb:.0f} MB state dict ({TENSORS} tensors), {args.reps} repetitions, "
          f"folder {work}")
    try:
        timed(plain_save, weights, "plain.pt")  # warm-up: allocator, page cache, first blob
        timed(torch.save, weights, "captured.pt")
        settle(capture)
        plain, captured, until_stored = [], [], []
        for rep in range(args.reps):
            weights["layer0.weight"][0] += 1.0  # new content: a real new version every time
            os.sync()
            sides = [("plain", plain_save, "plain.pt"), ("captured", torch.save, "captured.pt")]
            for side, save, path in sides if rep % 2 == 0 else reversed(sides):
                seconds = timed(save, weights, path)
                if side == "captured":
                    captured.append(seconds)
                    until_stored.append(settle(capture))
                else:
                    plain.append(seconds)
                os.sync()
        stats = capture.stats
        stored = experiment.store.get("captured.pt")
        (entry,) = stored.manifest.entries
        assert entry.sha256 == hashlib.sha256(Path("captured.pt").read_bytes()).hexdigest(), "stored bytes differ"

        median_plain, median_captured = statistics.median(plain), statistics.median(captured)
        ratio = median_captured / median_plain
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(f"  plain torch.save     median {median_plain * 1000:8.1f} ms   runs: "
              + " ".join(f"{s * 1000:.0f}" for s in plain))
        print(f"  with capture         median {median_captured * 1000:8.1f} ms   runs: "
              + " ".join(f"{s * 1000:.0f}" for s in captured))
        print(f"  ratio captured/plain {ratio:.3f}   target ≤ {TARGET_RATIO:.2f}   {verdict}")
        print(f"  return → stored      median {statistics.median(until_stored) * 1000:8.1f} ms   "
              f"max {max(until_stored) * 1000:.0f} ms   (background: link → hash → copy into the store)")
        print(f"  waits for a previous capture: {stats.waits} ({stats.wait_s * 1000:.0f} ms)   "
              f"copies instead of links: {stats.copies}   stored versions: {stored.version}   "
              f"failures: {stats.failed}")

        small = {"w": torch.zeros(256)}  # the fixed cost on the caller's thread, without the 200 MB write
        Path("small").mkdir()
        plain_small = [timed(plain_save, small, f"small/plain{i}.pt") for i in range(100)]
        captured_small = [timed(torch.save, small, f"small/captured{i}.pt") for i in range(100)]
        settle(capture)
        overhead_us = (statistics.median(captured_small) - statistics.median(plain_small)) * 1e6
        print(f"  fixed cost per captured save (1 KB object, median of 100): {overhead_us:.0f} µs "
              f"(plain {statistics.median(plain_small) * 1e6:.0f} µs): resolve, link, build, submit")

        if not args.no_back_to_back:
            first, second, waited = [], [], []
            for _ in range(3):
                os.sync()
                waits_before, wait_s_before = capture.stats.waits, capture.stats.wait_s
                weights["layer0.weight"][0] += 1.0
                first.append(timed(torch.save, weights, "captured.pt"))
                weights["layer0.weight"][0] += 1.0
                second.append(timed(torch.save, weights, "captured.pt"))  # the first is still being ingested
                after = capture.stats
                waited.append(after.wait_s - wait_s_before if after.waits > waits_before else 0.0)
                settle(capture)
            print("  back-to-back re-save of the same path (no work in between; not the P1 figure):")
            print(f"    first save median {statistics.median(first) * 1000:.0f} ms, second save median "
                  f"{statistics.median(second) * 1000:.0f} ms, of which waiting for the first capture "
                  f"{statistics.median(waited) * 1000:.0f} ms")
    finally:
        capture.disable()
        experiment.stop()
        os.chdir(Path(__file__).resolve().parents[1])
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    main()
