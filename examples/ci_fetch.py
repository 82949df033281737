"""Fetch CI artifacts through the cache: list a repository's workflow runs, retrieve each run's
``perf-report`` in one parallel batch, retrieve again from the cache, read a metric from one report,
and trend the metric over everything the cache holds.

The example starts its own fake GitHub Actions API on 127.0.0.1 (same JSON shapes, Link pagination and
the 302 to a separate blob host), so it runs anywhere without a token:

    python examples/ci_fetch.py

Against the real GitHub, drop the fake server and the ``base_url`` and export ``GITHUB_TOKEN``.
"""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
import threading
import time
import zipfile
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tracelet_artifacts.ci import ArtifactRetriever, CIProviderFactory, safe_extract

RUNS = 12


def _perf_zip(run: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("perf.json", json.dumps({"metrics": {"throughput": 120.0 + run * 1.5, "latency_ms": 8.0}}))
    return buffer.getvalue()


def start_fake_github() -> str:
    """A tiny GitHub Actions API: runs (two pages), artifacts per run, 302 to a blob host."""
    blobs = {run: _perf_zip(run) for run in range(RUNS)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            parts = path.strip("/").split("/")
            base = f"http://127.0.0.1:{port}"
            if path.endswith("/actions/runs"):
                page = int(dict(p.split("=") for p in query.split("&") if "=" in p).get("page", "1"))
                runs = [{"id": 1000 + r, "run_attempt": 1, "status": "completed", "conclusion": "success",
                         "head_branch": "main", "head_sha": f"{r:040x}", "name": "Benchmarks",
                         "created_at": f"2024-05-{r + 1:02d}T02:00:00Z"} for r in range(RUNS)]  # fmt: skip
                chunk = runs[(page - 1) * 10 : page * 10]
                link = f'<{base}/repos/demo/app/actions/runs?page={page + 1}>; rel="next"' if page == 1 else ""
                self._json({"total_count": RUNS, "workflow_runs": chunk}, {"Link": link} if link else {})
            elif path.endswith("/artifacts") and "runs" in parts:
                run = int(parts[-2]) - 1000
                art = {"id": run, "name": "perf-report", "size_in_bytes": len(blobs[run]), "expired": False,
                       "archive_download_url": f"{base}/repos/demo/app/actions/artifacts/{run}/zip",
                       "created_at": f"2024-05-{run + 1:02d}T02:10:00Z"}  # fmt: skip
                self._json({"total_count": 1, "artifacts": [art]})
            elif path.endswith("/zip"):
                self.send_response(302)
                self.send_header("Location", f"{base}/blob/{parts[-2]}")  # a real API points at another host
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts[0] == "blob":
                time.sleep(0.05)  # a slow blob store makes the cache visible
                self._send(200, blobs[int(parts[1])], "application/zip")
            else:
                self._send(404, b'{"message": "Not Found"}', "application/json")

        def _json(self, data: object, headers: dict[str, str] | None = None) -> None:
            self._send(200, json.dumps(data).encode(), "application/json", headers)

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in {"Content-Type": ctype, "Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}"


def main() -> None:
    base_url = start_fake_github()
    github = CIProviderFactory.create({"type": "github", "repo": "demo/app", "base_url": base_url})
    runs = github.list_runs(branch="main", status="success", limit=None)
    print(f"{len(runs)} successful runs on main (two pages)")

    with tempfile.TemporaryDirectory() as tmp:
        retriever = ArtifactRetriever(Path(tmp) / "cache", max_cache_size_mb=100, max_cache_age_days=7)
        retriever.register_provider("github", github)
        requests = [(run.run_id, "perf-report", "github") for run in runs]

        for label in ("cold cache", "warm cache"):
            start = time.perf_counter()
            results = asyncio.run(retriever.retrieve_artifacts_batch(requests))
            elapsed = time.perf_counter() - start
            hits = sum(r.from_cache for r in results)
            print(f"{label}: {len(results)} artifacts in {elapsed * 1000:.0f} ms ({hits} from the cache)")

        path, meta = asyncio.run(retriever.retrieve_artifact(runs[0].run_id, "perf-report", "github"))
        folder = safe_extract(path, Path(tmp) / "perf-report")  # GitHub artifacts are zips
        print(f"run {meta.test_run_id}: {meta.artifact_type} {meta.size_bytes} bytes, sha256 {meta.sha256[:12]}…, "
              f"unpacked: {sorted(p.name for p in folder.iterdir())}")
        print(f"throughput in run {meta.test_run_id}: {meta.content_value('metrics.throughput')}")  # read in the zip

        trend = asyncio.run(retriever.analyze_metrics_trend(
            "github", "performance_report", "throughput", days=31, now=datetime(2024, 6, 1, tzinfo=timezone.utc),
            lower_is_better=False))
        first, last = trend.points[0], trend.points[-1]
        print(f"throughput over {len(trend.points)} cached runs: {first.value} -> {last.value} "
              f"({trend.analysis.direction})")
        retriever.close()
    github.close()


if __name__ == "__main__":
    main()
