"""The contract every CI provider implements, and the small immutable values providers return.

A provider lists runs, lists one run's artifacts, downloads an artifact to a path, and uploads where
the CI system allows it; everything else (caching, metadata, trends) is built on these four calls.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from tracelet_artifacts.ci.errors import (
    ArtifactExpiredError,
    ArtifactUnavailableError,
    CINotFoundError,
    UnsupportedOperationError,
)

if TYPE_CHECKING:
    from tracelet_artifacts.ci.download import Downloaded, Expectation, ProgressCallback
    from tracelet_artifacts.ci.http import Opened, ProviderHTTP


_P = TypeVar("_P", bound="CIProvider")


@dataclass(frozen=True)
class CIRun:
    """One workflow run, pipeline, build or task group as the provider reports it.

    >>> CIRun(provider="github", run_id="30433642", attempt=1, status="completed")  # doctest: +ELLIPSIS
    CIRun(provider='github', run_id='30433642', attempt=1, ...)
    """

    provider: str
    run_id: str
    attempt: int = 1
    status: str | None = None
    conclusion: str | None = None
    name: str | None = None
    ref: str | None = None
    commit_sha: str | None = None
    created_at: str | None = None
    web_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class CIArtifact:
    """One downloadable artifact of a run.

    ``digest`` is ``"sha256:<hex>"`` when the provider gives one; ``archive`` says the body is a zip
    of files (GitHub, GitLab job archives, Jenkins ``*zip*``) rather than the file itself.
    """

    provider: str
    run_id: str
    name: str
    attempt: int = 1
    size: int | None = None
    digest: str | None = None
    download_url: str | None = None
    expired: bool = False
    archive: bool = False
    created_at: str | None = None
    expires_at: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def cache_key(self) -> tuple[str, str, int, str]:
        """What identifies this artifact's bytes: provider, run, attempt and name."""
        return (self.provider, self.run_id, self.attempt, self.name)


class CIProvider(abc.ABC):
    """Read (and where possible write) one CI system's artifacts.

    Subclasses implement ``list_runs``, ``list_artifacts`` and ``_open_download``; ``download_artifact``
    turns the latter into a verified, atomic file. Upload is optional and raises by default.

    >>> with GitHubActionsProvider("octo/repo", token="…") as gh:  # doctest: +SKIP
    ...     art = gh.get_artifact("30433642", "perf-report")
    ...     gh.download_artifact(art, Path("perf-report.zip"))
    """

    name: ClassVar[str] = "ci"
    # Constructor options read from the environment when a configuration leaves them out: option -> variable.
    env_options: ClassVar[Mapping[str, str]] = {}
    # The constructor option that names what to read (a repository, project or job), if any.
    location_option: ClassVar[str | None] = None
    # The command line's run filters (branch, status, sha, task_group_id) -> this provider's list_runs keyword.
    cli_filters: ClassVar[Mapping[str, str]] = {}
    http: ProviderHTTP

    @abc.abstractmethod
    def list_runs(self, *, limit: int | None = 50, **filters: Any) -> list[CIRun]:
        """Newest runs first, filtered by provider-specific keys (branch, status, ...)."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, *, attempt: int | None = None) -> list[CIArtifact]:
        """The artifacts of one run (of one attempt, or of the latest when ``attempt`` is None)."""

    @abc.abstractmethod
    def _open_download(self, artifact: CIArtifact) -> AbstractContextManager[Opened]:
        """Open a streaming, status-checked response for the artifact body."""

    def _expectation(self, artifact: CIArtifact, opened: Opened) -> Expectation:
        """What the body must look like; providers with digest headers override this."""
        from tracelet_artifacts.ci.download import Expectation

        return Expectation(size=artifact.size, sha256=artifact.digest, zip=artifact.archive)

    def upload_artifact(self, path: Path, name: str, **options: Any) -> str:
        """Upload a local file; returns where it can be fetched from. Unsupported by default."""
        raise UnsupportedOperationError(
            f"{self.name} has no API to upload artifacts; let the CI job archive them instead."
        )

    def _named(self, run_id: str, name: str, attempt: int | None) -> list[CIArtifact]:
        """The run's artifacts that may carry ``name`` (providers whose API filters by name override this)."""
        return self.list_artifacts(run_id, attempt=attempt)

    def _ls_command(self, run_id: str) -> str:
        """The CLI command that lists a run's artifacts, for error messages."""
        return f"tracelet-artifacts ci ls {self.name} {run_id}"

    def get_artifact(self, run_id: str, name: str, *, attempt: int | None = None) -> CIArtifact:
        """The named artifact of a run; the newest attempt when several carry the same name."""
        matches = [a for a in self._named(run_id, name, attempt) if a.name == name]
        if not matches:
            raise CINotFoundError(
                f"{self.name}: run {run_id} has no artifact named {name!r}; "
                f"list them with `{self._ls_command(run_id)}`."
            )
        live = [a for a in matches if not a.expired] or matches
        return max(live, key=lambda a: a.attempt)

    def download_artifact(
        self,
        artifact: CIArtifact,
        dest: Path,
        *,
        progress: ProgressCallback | None = None,
    ) -> Downloaded:
        """Download ``artifact`` to the file ``dest`` (atomic, verified, retried when transient)."""
        from tracelet_artifacts.ci.download import download_to_path

        if artifact.expired:
            raise ArtifactExpiredError(
                f"{self.name}: artifact {artifact.name!r} of run {artifact.run_id} has expired; "
                "re-run the job to produce it again."
            )
        if artifact.extra.get("storage_type") == "error":
            raise ArtifactUnavailableError(
                f"{self.name}: {artifact.name!r} of task {artifact.run_id} is an error artifact "
                f"({artifact.extra.get('reason', 'no reason given')}); it will never be downloadable."
            )
        return download_to_path(
            lambda: self._open_download(artifact),
            Path(dest),
            expect=lambda opened: self._expectation(artifact, opened),
            retry=self.http.retry,
            sleep=self.http.sleep,
            progress=progress,
        )

    def close(self) -> None:
        """Close the HTTP client if this provider created it."""
        if getattr(self, "_owns_client", False):
            self.http.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.http.base_url!r})"
