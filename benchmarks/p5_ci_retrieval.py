"""P5: CI artifact retrieval through the GitHub provider against a loopback server that adds latency.

Prints, side by side from one run: sequential ÷ batch retrieval (target >= 10x) and cold ÷ warm cache
(target >= 100x). Each artifact costs three requests, like the real API: the run's artifact list
(filtered by name), the zip endpoint's 302, and the blob host's body.

    python benchmarks/p5_ci_retrieval.py [--artifacts 200] [--latency-ms 50] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import multiprocessing
import socket
import statistics
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tracelet_artifacts.ci.providers.github import GitHubActionsProvider
from tracelet_artifacts.ci.retriever import ArtifactRequest, ArtifactRetriever

REPEATS = 5  # warm measurements are cheap: the median of five is reported (cold ones run once)


def _zip_for(run: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("perf.json", json.dumps({"run": run, "metrics": {"throughput": 100.0 + run % 7}}))
    return buffer.getvalue()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def _serve(route: Callable[[str], tuple[int, dict[str, str], bytes]], latency: float) -> _Server:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stalls

        def do_GET(self) -> None:
            time.sleep(latency)
            status, headers, body = route(self.path)
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _fake_github(count: int, latency: float) -> tuple[_Server, _Server]:
    bodies = {run: _zip_for(run) for run in range(count)}
    blob = _serve(lambda path: (200, {"Content-Type": "application/zip"}, bodies[int(path.rsplit("/", 1)[1])]), latency)
    blob_url = f"http://127.0.0.1:{blob.server_address[1]}"
    api_url: list[str] = []

    def api_route(path: str) -> tuple[int, dict[str, str], bytes]:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if parts[-1] == "artifacts":  # /repos/o/r/actions/runs/{run}/artifacts
            run = int(parts[-2])
            item = {
                "id": run,
                "name": "perf",
                "size_in_bytes": len(bodies[run]),
                "expired": False,
                "digest": "sha256:" + hashlib.sha256(bodies[run]).hexdigest(),
                "archive_download_url": f"{api_url[0]}/repos/o/r/actions/artifacts/{run}/zip",
                "created_at": "2024-01-01T00:00:00Z",
            }
            listing = json.dumps({"total_count": 1, "artifacts": [item]}).encode()
            return 200, {"Content-Type": "application/json"}, listing
        if parts[-1] == "zip":  # /repos/o/r/actions/artifacts/{id}/zip -> 302 to the blob host
            return 302, {"Location": f"{blob_url}/blob/{parts[-2]}"}, b""
        return 404, {}, b"{}"

    api = _serve(api_route, latency)
    api_url.append(f"http://127.0.0.1:{api.server_address[1]}")
    return api, blob


def _server_process(count: int, latency: float, ports: Any, stop: Any) -> None:
    api, _blob = _fake_github(count, latency)
    ports.put(api.server_address[1])
    stop.wait()


def _start_fake_github(count: int, latency: float) -> tuple[str, Callable[[], None]]:
    """The fake API and blob host in their own process, so their CPU does not count as the client's."""
    ctx = multiprocessing.get_context("fork")
    ports, stop = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_server_process, args=(count, latency, ports, stop), daemon=True)
    process.start()
    port = ports.get(timeout=30)

    def shutdown() -> None:
        stop.set()
        process.join(timeout=10)

    return f"http://127.0.0.1:{port}", shutdown


def _retriever(cache: Path, base_url: str, concurrency: int) -> ArtifactRetriever:
    retriever = ArtifactRetriever(cache, max_cache_size_mb=512, max_cache_age_days=7, max_concurrency=concurrency)
    retriever.register_provider("github", GitHubActionsProvider("o/r", token="bench-token", base_url=base_url))
    return retriever


def _check(paths: Sequence[Path | None], bodies: dict[int, bytes]) -> None:
    for run, path in enumerate(paths):
        assert path is not None and path.read_bytes() == bodies[run], f"artifact of run {run} differs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    count, latency = args.artifacts, args.latency_ms / 1000
    base_url, shutdown = _start_fake_github(count, latency)
    bodies = {run: _zip_for(run) for run in range(count)}
    requests = [ArtifactRequest(str(run), "perf", "github") for run in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        sequential = _retriever(root / "sequential", base_url, 1)
        t0 = time.perf_counter()
        seq_results = [asyncio.run(sequential.retrieve_artifact(str(run), "perf", "github")) for run in range(count)]
        t_sequential = time.perf_counter() - t0
        _check([path for path, _ in seq_results], bodies)
        seq_warm_times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            seq_warm = [asyncio.run(sequential.retrieve_artifact(str(r), "perf", "github")) for r in range(count)]
            seq_warm_times.append(time.perf_counter() - t0)
            _check([path for path, _ in seq_warm], bodies)
        t_seq_warm = statistics.median(seq_warm_times)
        sequential.close()

        batch = _retriever(root / "batch", base_url, args.concurrency)
        t0 = time.perf_counter()
        cold = batch.retrieve_batch(requests)
        t_cold = time.perf_counter() - t0
        assert all(r.ok and not r.from_cache for r in cold), [r.error for r in cold if not r.ok][:3]
        _check([r.path for r in cold], bodies)
        warm_times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            warm = batch.retrieve_batch(requests)
            warm_times.append(time.perf_counter() - t0)
            assert all(r.ok and r.from_cache for r in warm)
            _check([r.path for r in warm], bodies)
        t_warm = statistics.median(warm_times)
        batch.close()

        fresh_times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            fresh = _retriever(root / "batch", base_url, args.concurrency)  # what a new process pays
            fresh_results = fresh.retrieve_batch(requests)
            fresh_times.append(time.perf_counter() - t0)
            assert all(r.ok and r.from_cache for r in fresh_results)
            fresh.close()
        t_fresh = statistics.median(fresh_times)

    shutdown()
    print(f"P5 CI retrieval: {count} artifacts, GitHub provider, loopback +{args.latency_ms:.0f} ms per request, "
          f"3 requests per artifact, batch concurrency {args.concurrency}; warm = median of {REPEATS}")  # fmt: skip
    print(f"{'measure':<44}{'baseline':>11}{'candidate':>11}{'ratio':>9}{'target':>8}  verdict")
    rows = [
        ("sequential ÷ batch (cold cache)", t_sequential, t_cold, 10.0),
        ("cold ÷ warm cache, sequential", t_sequential, t_seq_warm, 100.0),
        ("cold ÷ warm cache, batch", t_cold, t_warm, 100.0),
        ("cold ÷ warm cache, batch in a new process", t_cold, t_fresh, 100.0),
    ]
    for label, base, cand, target in rows:
        ratio = base / cand
        verdict = "met" if ratio >= target else "MISSED"
        print(f"{label:<44}{base:>10.3f}s{cand:>10.3f}s{ratio:>8.1f}x{target:>7.0f}x  {verdict}")


if __name__ == "__main__":
    main()
