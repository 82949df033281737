"""Compare two versions of a model, then look at the store in the browser — from an empty folder.

    python examples/diff_and_ui.py [OUTPUT_DIR] [--serve SECONDS]

Logs three versions of ``diff-demo/classifier`` (a YAML config, a metrics JSON and, when torch is
installed, a state dict) into ``OUTPUT_DIR/.tracelet`` (default ``./diff-demo-output``), prints what
changed from v1 to v2 (config keys, metric deltas with a regression verdict, tensors whose shape changed),
then starts the web view on a free loopback port for SECONDS (default 3), checks that it answers, and
stops it. Browse the same store yourself with:

    tracelet-artifacts ui --store OUTPUT_DIR/.tracelet          # http://127.0.0.1:8700/
    tracelet-artifacts diff --store OUTPUT_DIR/.tracelet diff-demo/classifier:v1 diff-demo/classifier:v2
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

from tracelet_artifacts import EmbeddedStore, TraceletArtifact, diff_versions

NAME = "diff-demo/classifier"
RUNS = [  # (learning rate, hidden units, validation loss, accuracy)
    (0.01, 4, 0.42, 0.88),
    (0.003, 6, 0.47, 0.91),
    (0.003, 6, 0.39, 0.92),
]


def log_versions(store: EmbeddedStore, inputs: Path) -> None:
    try:
        import torch
    except ImportError:
        torch = None
    for run, (lr, hidden, loss, accuracy) in enumerate(RUNS, start=1):
        folder = inputs / f"run-{run}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(f"optimizer:\n  name: adam\n  lr: {lr}\nhidden: {hidden}\n")
        (folder / "metrics.json").write_text(json.dumps({"val_loss": loss, "accuracy": accuracy}))
        art = TraceletArtifact(NAME, "model", description=f"run {run}", metadata={"accuracy": accuracy})
        art.add_file(folder / "config.yaml").add_file(folder / "metrics.json")
        if torch is not None:
            torch.manual_seed(run)
            torch.save({"encoder.weight": torch.randn(hidden, 3), "head.bias": torch.zeros(2)}, folder / "model.pt")
            art.add_file(folder / "model.pt")
        record = store.log(art)
        print(f"logged   {record.ref}  ({len(record.manifest.entries)} files)")


def print_diff(store: EmbeddedStore, a: str, b: str) -> None:
    diff = diff_versions(store, a, b)
    print(f"\ndiff     {diff.ref_a} -> {diff.ref_b}")
    for entry in diff.changed_entries:
        print(f"  file   {entry.path}: {entry.status} ({entry.size_a} -> {entry.size_b} bytes)")
    for change in diff.metadata:
        print(f"  meta   {change.key}: {change.before} -> {change.after}")
    for content in diff.contents:
        numbers = {metric.key for metric in content.metrics}
        for key in (k for k in content.keys if k.key not in numbers):
            print(f"  key    {content.path} {key.key}: {key.before} -> {key.after}")
        for metric in content.metrics:
            verdict = f"  [{metric.verdict}]" if metric.verdict else ""
            print(f"  metric {content.path} {metric.key}: {metric.before:g} -> {metric.after:g} "
                  f"({metric.percent:+.1f}%){verdict}")
        for tensor in content.tensors:
            if tensor.status == "shape":
                print(f"  tensor {content.path} {tensor.key}: shape {tensor.shape_a} -> {tensor.shape_b}")
            elif tensor.relative_change:
                print(f"  tensor {content.path} {tensor.key}: moved {tensor.relative_change:.2f} of its norm")
    print(f"  regressions: {', '.join(m.key for m in diff.regressions) or 'none'}")


def serve_briefly(store: EmbeddedStore, seconds: float) -> None:
    """The web view on a free loopback port for ``seconds``: what `tracelet-artifacts ui` runs."""
    try:
        import uvicorn

        from tracelet_artifacts.ui.app import create_app
    except ImportError:
        print("\nweb view: pip install 'tracelet-artifacts[ui]', then run `tracelet-artifacts ui`")
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    with urllib.request.urlopen(url + f"diff/{NAME}?a=v1&b=v2", timeout=10) as response:
        answered = response.status
    print(f"\nweb view served at {url} (diff page answered {answered}); stopping in {seconds:g} s")
    time.sleep(seconds)
    server.should_exit = True
    thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", type=Path, default=Path("diff-demo-output"))
    parser.add_argument("--serve", type=float, default=3.0, metavar="SECONDS",
                        help="keep the web view up this long (0: do not start it)")
    args = parser.parse_args()
    store = EmbeddedStore(args.output / ".tracelet")
    try:
        if not store.catalog.names(prefix=NAME):
            log_versions(store, args.output / "inputs")
        else:
            print(f"found    {NAME} already in {store.root}")
        print_diff(store, f"{NAME}:v1", f"{NAME}:v2")
        if args.serve > 0:
            serve_briefly(store, args.serve)
        else:
            print(f"\nbrowse it: tracelet-artifacts ui --store {store.root}")
    finally:
        store.close()


if __name__ == "__main__":
    main()
