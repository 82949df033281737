"""Errors raised by the CI-provider bridge, all under ``tracelet_artifacts.errors.CIError``.

Each message says what happened and what to do; none of them ever contains a token::

    CIError
    ├── CIProviderError           a provider answered with something we cannot use (retryable flag)
    │   ├── CIAuthError             401/403: the token is missing, wrong or lacks a scope
    │   ├── CINotFoundError         404: no such run, job, task or artifact
    │   ├── ArtifactExpiredError    410: the provider deleted the artifact after its retention period
    │   ├── ArtifactUnavailableError 424: a Taskcluster error artifact (terminal, never retried)
    │   └── RateLimitedError        403/429 with rate-limit headers, and the reset is too far away
    ├── UnsupportedOperationError the provider has no API for this (e.g. upload to Jenkins)
    ├── CIUsageError              arguments a provider cannot use (no job name, unknown filter); also a ValueError
    ├── DownloadIntegrityError    truncated body, size or digest mismatch, an HTML page instead of a zip
    └── UnsafeArchiveError        an archive entry escapes the target, is a link outside it, or is a bomb
"""

from __future__ import annotations

from tracelet_artifacts.errors import CIError


class CIProviderError(CIError):
    """A CI provider answered with an error or a response we cannot use.

    ``retryable`` says whether trying again later may succeed; ``status`` is the HTTP status, if any.
    """

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class CIAuthError(CIProviderError):
    """The provider refused the credentials (401/403)."""


class CINotFoundError(CIProviderError):
    """The run, job, task or artifact does not exist (404), or the token cannot see it."""


class ArtifactExpiredError(CIProviderError):
    """The artifact existed but its retention period is over (HTTP 410 or ``expired: true``)."""


class ArtifactUnavailableError(CIProviderError):
    """The artifact is an error artifact (Taskcluster 424); it will never become downloadable."""


class RateLimitedError(CIProviderError):
    """The provider's rate limit is exhausted and the reset is later than we are allowed to wait.

    ``reset_at`` is the epoch second when the limit resets, if the provider said.
    """

    def __init__(self, message: str, *, reset_at: float | None = None, status: int | None = None) -> None:
        super().__init__(message, retryable=True, status=status)
        self.reset_at = reset_at


class UnsupportedOperationError(CIError):
    """The provider has no API for the requested operation."""


class CIUsageError(CIError, ValueError):
    """A provider was given arguments it cannot use (a missing job name, an unknown filter or token type)."""


class DownloadIntegrityError(CIError):
    """A downloaded body is truncated, has the wrong size or digest, or is not what was expected."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class UnsafeArchiveError(CIError):
    """An archive that would write outside its target folder, or expands past the size limit."""


# --- metadata, discovery, trends and comparison --------------------------------------------------
#
#   CIError
#   ├── ArtifactMetadataError     metadata for a missing file, or a metadata dict that cannot be read
#   ├── ArtifactQueryError        a discovery query with an unknown operator or a non-numeric comparison
#   ├── TrendAnalysisError        a series that cannot be analysed (empty, non-finite, bad parameters)
#   └── ComparisonError           two artifacts that cannot be compared (missing, unreadable)


class ArtifactMetadataError(CIError):
    """Metadata cannot be built for a file (it is missing) or read back from a dict."""


class ArtifactQueryError(CIError):
    """A discovery query that cannot be evaluated, such as an unknown comparison operator."""


class TrendAnalysisError(CIError):
    """A metric series or trend parameter that cannot be analysed."""


class ComparisonError(CIError):
    """Two artifacts that cannot be compared, for example because one of them is missing."""
