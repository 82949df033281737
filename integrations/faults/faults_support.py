"""Helpers of the delivery fault suite: the child training process (training_run.py), a slow loopback
link, and reading back what MLflow (through ``MlflowClient``) and W&B (through the adapter's offline run-file
reader) hold for each logged version.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TRAINING_RUN = HERE / "training_run.py"
for _folder in (HERE.parent / "mlflow", HERE.parent / "wandb"):  # the MLflow and W&B suites' helpers
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))


def assert_mlflow_holds_each_once(client: Any, experiment_name: str, run_id: str, versions: list[Any]) -> str:
    """MLflow holds each of ``versions`` (catalog ArtifactVersions) exactly once, in the one MLflow run of
    the tracelet run ``run_id``: one digest tag per version (no other), exactly its files at their sizes,
    one registered model version per model digest. Returns the MLflow run id."""
    from mlflow_support import artifact_files, holders

    experiment_id = client.get_experiment_by_name(experiment_name).experiment_id
    (run,) = client.search_runs([experiment_id])
    assert run.data.tags["tracelet.run_id"] == run_id
    tags = {k: v for k, v in run.data.tags.items() if k.startswith("tracelet.artifact/")}
    assert tags == {f"tracelet.artifact/{v.name}/v{v.version}": v.digest for v in versions}
    for record in versions:
        assert holders(client, experiment_id, record.name, record.version) == [run.info.run_id]
        prefix = f"{record.name}/v{record.version}"
        entries = record.manifest.entries
        assert artifact_files(client, run.info.run_id, prefix) == sorted(f"{prefix}/{e.path}" for e in entries)
        sizes = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id, prefix) if not f.is_dir}
        assert all(sizes[f"{prefix}/{e.path}"] == e.size for e in entries if "/" not in e.path)
    for model in {v.name for v in versions if v.manifest.model is not None}:
        registered = client.search_model_versions(f"name='{model}'")
        expected = sorted((v.version, v.digest) for v in versions if v.name == model)
        assert sorted((int(mv.tags["tracelet.version"]), mv.tags["tracelet.digest"]) for mv in registered) == expected
    return str(run.info.run_id)


class Training:
    """The child training process: started with a JSON config, read line by line, killable with SIGKILL."""

    def __init__(self, config: dict[str, Any], env: dict[str, str], cwd: Path) -> None:
        self.log = cwd / "training.log"  # the child's stderr (its warnings), appended to by each child
        with self.log.open("ab") as stderr:
            self.process = subprocess.Popen([sys.executable, str(TRAINING_RUN), json.dumps(config)], env=env,
                                            cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                            start_new_session=True)

    def line(self) -> dict[str, Any]:
        """The next JSON line the child prints."""
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        assert text, f"the training process ended early (exit {self.process.wait()})"
        return dict(json.loads(text))

    def kill(self) -> None:
        """SIGKILL the training process alone (not its W&B service), as the OOM killer would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def cleanup(self) -> None:
        """Whatever the child left running in its session (e.g. wandb-core) is killed too."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()



class SlowLink:
    """A TCP proxy on 127.0.0.1 that forwards to ``port`` and passes uploads (client to server) at
    ``bytes_per_s``: a slow network, so a large upload takes long enough to be killed in the middle."""

    def __init__(self, port: int, bytes_per_s: float) -> None:
        self.target, self.rate = ("127.0.0.1", port), bytes_per_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closed = threading.Event()
        threading.Thread(target=self._accept, name="slow-link", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                continue
            for source, sink, rate in ((client, server, self.rate), (server, client, 0.0)):
                threading.Thread(target=self._pump, args=(source, sink, rate), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, rate: float) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(64 * 1024):
                sink.sendall(chunk)
                if rate:
                    time.sleep(len(chunk) / rate)
        for end in (source, sink):  # one side closed: close both, as a dropped connection would
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
