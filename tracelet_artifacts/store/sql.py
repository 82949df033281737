"""Database connections for the catalog: SQLite (the embedded default) or PostgreSQL (a team's shared catalog).

The catalog writes one SQL dialect, SQLite's with ``?`` parameters; ``PostgresDatabase`` translates it
(parameters, the two function names that differ) so both run the same queries. Each thread gets its own
connection. ``transaction(*keys)`` makes writers take turns across every process that shares the
catalog: on SQLite all of them (``BEGIN IMMEDIATE``); on PostgreSQL those with a key in common (one
transaction-scoped advisory lock per key, so logging ``model-a`` never waits for ``model-b``), and a
transaction without keys waits for every other writer.

    db = open_database("postgresql://tracelet:…@db.internal/tracelet")
    with db.transaction() as conn:
        conn.execute("INSERT INTO artifacts (name, created_at) VALUES (?, ?)", ("model", 0.0))
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from tracelet_artifacts.errors import ArtifactStoreError, ConfigurationError
from tracelet_artifacts.redact import redact_url

POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
# The advisory lock every catalog writer takes: shared by keyed writers, exclusive for writers without keys
# (any constant works; this one spells "trclt"). Keys lock (_KEY_SPACE, hashtext(key)): PostgreSQL keeps
# two-number advisory locks apart from one-number ones.
_WRITER_LOCK = 0x7472636C74
_KEY_SPACE = 0x74726B
_INSTALL_HINT = "pip install 'tracelet-artifacts[postgres]'"


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the catalog needs of a connection: sqlite3's ``execute``/``executemany`` shape."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Cursor: ...

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> Any: ...


class Database(ABC):
    """One catalog database; safe to share between threads (one connection per thread)."""

    dialect: str
    #: The driver's error classes: callers turn them into ArtifactStoreError.
    errors: tuple[type[BaseException], ...]

    def __init__(self) -> None:
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the database is, safe to print (no password)."""

    @abstractmethod
    def _connect(self) -> Any: ...

    def _usable(self, conn: Any) -> bool:
        return True

    def connection(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not self._usable(conn):  # e.g. the server restarted: replace it
            with self._lock, suppress(ValueError):
                self._connections.remove(conn)
            with suppress(Exception):
                conn.close()
            conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @abstractmethod
    def _begin(self, conn: Connection, keys: Sequence[str]) -> None: ...

    def failed(self, exc: BaseException) -> ArtifactStoreError:
        """A driver error as the error users see: where, what (no password), and what to do."""
        return ArtifactStoreError(
            f"The catalog at {self.location} failed: {redact_url(str(exc).strip()) or type(exc).__name__}; "
            "check that the database is reachable and its disk has space, then retry (nothing was half-written)."
        )

    @contextmanager
    def transaction(self, *keys: str) -> Iterator[Connection]:
        """A write transaction: writers with a key in common, or without keys, take turns across every
        process sharing the database. It commits completely or not at all; a driver error becomes
        ArtifactStoreError.
        """
        try:
            conn = self.connection()
            self._begin(conn, keys)
            try:
                yield conn
            except BaseException:
                with suppress(*self.errors):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except self.errors as exc:
            raise self.failed(exc) from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """This thread's connection for reads outside a transaction; a driver error becomes ArtifactStoreError."""
        try:
            yield self.connection()
        except self.errors as exc:
            raise self.failed(exc) from exc

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.reading() as conn:
            return conn.execute(sql, params).fetchall()

    def script(self, conn: Connection, ddl: str) -> None:
        """Run several ``;``-separated statements (no ``;`` inside a statement) in the current transaction."""
        for statement in ddl.split(";"):
            if statement.strip():
                conn.execute(statement)

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                with suppress(Exception):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()


class SqliteDatabase(Database):
    """A SQLite file in WAL mode."""

    dialect = "sqlite"
    errors = (sqlite3.Error,)

    def __init__(self, path: Path, *, busy_timeout_s: float = 60.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        self._use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.row_factory = sqlite3.Row
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL. SQLite answers "database is locked" at once, without waiting the busy timeout, when
        another process is creating the same new catalog at that moment (every rank of a job opening one
        store): wait for it as a busy lock would be waited for."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    conn.close()
                    raise
                time.sleep(0.02)

    def _begin(self, conn: Connection, keys: Sequence[str]) -> None:
        conn.execute("BEGIN IMMEDIATE")  # one writer at a time, whatever the keys


class _Row(tuple):
    """A PostgreSQL row readable by position and by column name, like ``sqlite3.Row``."""

    names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        return tuple.__getitem__(self, self.names[key] if isinstance(key, str) else key)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], _Row]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    row_class = type("Row", (_Row,), {"names": names})
    return row_class


_PLACEHOLDER = re.compile(r"'[^']*'|\?|%")
_FUNCTIONS = {"group_concat(": "string_agg(", "instr(": "strpos("}


def to_postgres(sql: str) -> str:
    """SQLite-dialect SQL → PostgreSQL: ``?`` → ``%s``, ``%`` escaped, ``group_concat``/``instr`` renamed."""
    for sqlite_name, pg_name in _FUNCTIONS.items():
        sql = sql.replace(sqlite_name, pg_name)
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group() == "?" else "%%" if m.group() == "%" else m.group(), sql)


class _PostgresConnection:
    """A psycopg connection that takes the catalog's SQLite-dialect statements."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn
        self._sql: dict[str, str] = {}

    def _translate(self, sql: str) -> str:
        translated = self._sql.get(sql)
        if translated is None:
            translated = self._sql[sql] = to_postgres(sql)
        return translated

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(self._translate(sql), tuple(params) or None)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> Any:
        rows = [tuple(p) for p in seq]
        cursor = self.raw.cursor()
        if rows:
            cursor.executemany(self._translate(sql), rows)
        return cursor

    def close(self) -> None:
        self.raw.close()


class PostgresDatabase(Database):
    """A PostgreSQL database reached by URL (``postgresql://user:password@host:port/dbname``)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:
            raise ConfigurationError(f"A PostgreSQL catalog needs psycopg: {_INSTALL_HINT}.") from exc
        self._psycopg = psycopg
        self.errors = (psycopg.Error,)
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.connect_timeout_s = connect_timeout_s

    @property
    def location(self) -> str:
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.location!r})"

    def _connect(self) -> _PostgresConnection:
        try:
            conn = self._psycopg.connect(self.url, autocommit=True, row_factory=_row_factory,
                                         connect_timeout=max(1, int(self.connect_timeout_s)),
                                         application_name="tracelet-artifacts")
        except self._psycopg.Error as exc:
            raise ArtifactStoreError(
                f"Cannot connect to the PostgreSQL catalog at {self.location}: "
                f"{redact_url(str(exc).strip()) or type(exc).__name__}; check TRACELET_CATALOG_URL and "
                "that the server is up."
            ) from None
        return _PostgresConnection(conn)

    def _usable(self, conn: Any) -> bool:
        return not (conn.raw.closed or conn.raw.broken)

    def _begin(self, conn: Connection, keys: Sequence[str]) -> None:
        conn.execute("BEGIN")
        try:
            if not keys:
                conn.execute("SELECT pg_advisory_xact_lock(?)", (_WRITER_LOCK,))
                return
            conn.execute("SELECT pg_advisory_xact_lock_shared(?)", (_WRITER_LOCK,))
            for key in sorted(set(keys)):  # always in the same order: no two writers wait for each other
                conn.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_KEY_SPACE, key))
        except BaseException:
            with suppress(*self.errors):
                conn.execute("ROLLBACK")
            raise


def is_postgres_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_database(location: str | Path) -> Database:
    """A PostgreSQL URL opens PostgreSQL; anything else is a SQLite file path."""
    if is_postgres_url(location):
        return PostgresDatabase(str(location))
    if isinstance(location, str) and "://" in location:
        raise ConfigurationError(
            f"Unsupported catalog URL {redact_url(location)!r}: use postgresql://user:password@host/db, "
            "or a file path for SQLite."
        )
    return SqliteDatabase(Path(location))
