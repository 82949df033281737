"""Support for the team-store suites and benchmark. Real servers on 127.0.0.1: PostgreSQL from the Debian package
(``initdb`` into a temp folder, ``pg_ctl start``) and an S3-compatible server (moto's server mode).

Both are started by the test fixtures (``conftest.py`` here) and by ``benchmarks/p9_team_store.py``;
nothing needs to be running beforehand. Run as root (as CI does), PostgreSQL is started as the
``postgres`` system user, since it refuses to run as root. Also ``Team`` (one shared store that several
working folders point at) and ``adopt_suite`` (run a fast suite's store tests again on the team store).
"""

from __future__ import annotations

import glob
import importlib.util
import inspect
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tracelet_artifacts.store.embedded import EmbeddedStore

PG_USER, PG_PASSWORD, PG_DB = "tracelet", "team-Pa55word", "tracelet"
S3_KEY_ID, S3_SECRET = "tracelet-test-key", "tracelet-test-secret-0000"
REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = "install PostgreSQL's server (Debian: apt-get install -y postgresql) so initdb and pg_ctl exist"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


class PostgresServer:
    """A throw-away PostgreSQL cluster under ``root`` listening on 127.0.0.1:``port``.

    ``durable=False`` (the tests) turns fsync off; the benchmark keeps PostgreSQL's defaults.
    """

    def __init__(self, root: Path | None = None, *, port: int | None = None, durable: bool = False) -> None:
        # Its own folder straight under the temp dir: the postgres user must be able to reach it.
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="tracelet-pg-"))
        self.port = port or free_port()
        self.durable = durable
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError(f"PostgreSQL is not installed: {INSTALL_HINT}.")
        self.bin = bin_dir
        self.data = self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/{PG_DB}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> PostgresServer:
        self.root.mkdir(parents=True, exist_ok=True)
        password_file = self.root / "pwfile"
        password_file.write_text(PG_PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(password_file, "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", PG_USER, "--pwfile", str(password_file),
                      "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", options, "start")
        self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg

        admin = f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (PG_DB,)).fetchone():
                conn.execute(f"CREATE DATABASE {PG_DB}")

    def fresh_database(self) -> str:
        """A new empty database on this server; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/{name}"

    def stop(self, *, remove: bool = True) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


class S3Server:
    """moto's S3-compatible server in a child process on 127.0.0.1:``port``."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The usual AWS variables a process needs to reach this server."""
        return {"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}

    def start(self, timeout: float = 60.0) -> S3Server:
        env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("moto's S3 server exited at start; is moto[server] installed?")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"moto's S3 server did not answer on {self.endpoint} within {timeout:.0f}s")

    def create_bucket(self, name: str | None = None) -> str:
        import boto3

        bucket = name or f"tracelet-{uuid.uuid4().hex[:10]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_KEY_ID,
                              aws_secret_access_key=S3_SECRET, region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        return bucket

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Team:
    """One shared store (a database and a bucket) that several working folders point at."""

    catalog_url: str
    blob_url: str
    s3: S3Server

    @property
    def env(self) -> dict[str, str]:
        """What a process needs in its environment to use this store (the two settings and AWS's)."""
        return {**self.s3.env, "TRACELET_CATALOG_URL": self.catalog_url, "TRACELET_BLOB_URL": self.blob_url}

    def subprocess_env(self, workdir: Path) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
        path = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH", "")) if p)
        return {**base, **self.env, "PYTHONPATH": path, "TRACELET_STORE_PATH": str(workdir / ".tracelet")}

    def open(self, root: Path) -> EmbeddedStore:
        return EmbeddedStore(root, fsync=False, catalog_url=self.catalog_url, blob_url=self.blob_url,
                             s3_endpoint_url=self.s3.endpoint)


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def adopt_suite(filename: str, namespace: MutableMapping[str, Any], *, replaced: Iterable[str] = ()) -> None:
    """Run a fast suite's store tests again here: copy into ``namespace`` every test of ``tests/<filename>``
    that takes the ``store`` fixture (the team store, defined by the adopting module), and the fast suite's
    shared fixtures (``tests/conftest.py``) they use."""
    tests = REPO / "tests"
    if str(tests) not in sys.path:
        sys.path.append(str(tests))  # the suites' helper modules (helpers_adapters)
    shared = _load(tests / "conftest.py", "fast_suite_conftest")
    suite = _load(tests / filename, f"fast_suite_{filename[:-3]}")
    skip = set(replaced)
    for name, value in vars(shared).items():
        if hasattr(value, "_fixture_function_marker") or type(value).__name__ == "FixtureFunctionDefinition":
            namespace.setdefault(name, value)
    for name, value in vars(suite).items():
        if name.startswith("test_") and name not in skip and "store" in inspect.signature(value).parameters:
            namespace[name] = value
