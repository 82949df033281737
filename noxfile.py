"""nox sessions: tests, integrations, lint, typecheck, bench, demo, docs."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast test suite (no real backends)."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests", *session.posargs)


@nox.session(python=PYTHON)
def integrations(session: nox.Session) -> None:
    """The suites that run against real MLflow, W&B, ClearML, Aim, Lightning and CI wire formats."""
    session.install("-e", ".[dev]")
    session.run("pytest", "integrations", "-m", "integration", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "tracelet_artifacts", "tests", "integrations", "benchmarks", "examples")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy>=1.10", "types-PyYAML", "httpx>=0.27")
    session.run("mypy", "tracelet_artifacts")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every script in benchmarks/, each printing ours against its baseline side by side (``nox -s bench --
    ui.py`` runs one)."""
    session.install("-e", ".[dev]")
    scripts = session.posargs or sorted(path.name for path in Path("benchmarks").glob("*.py"))
    for script in scripts:
        session.run("python", f"benchmarks/{script}")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The README's demo on the embedded store."""
    session.install("-e", ".")
    session.run("python", "examples/quickstart.py")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    session.install("mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict")
