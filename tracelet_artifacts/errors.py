"""One exception hierarchy for the whole package, rooted at ``TraceletError``.

Every error a user can see is one of these, and its message says what to do about it::

    TraceletError
    ├── ArtifactError                 bad input to the artifact builder
    │   ├── InvalidArtifactNameError
    │   ├── InvalidArtifactPathError  absolute, escaping with "..", NUL bytes, duplicate
    │   ├── ArtifactFileError         missing file, directory given to add_file, unreadable
    │   │   └── ContentAnalysisError  a file whose content cannot be analysed (malformed, too large, unsafe)
    │   │       └── ContentTooLargeError
    │   ├── SerializationError        an object that the chosen serializer cannot write (or read back)
    │   │   └── UnsafeLoadError           pickled content, refused unless the caller passes allow_pickle=True
    │   ├── UnsupportedReferenceError unknown URI scheme
    │   └── ModelFrameworkError       a model whose framework cannot be detected or saved
    ├── ArtifactStoreError            the embedded store or a service-layer store failed
    │   ├── ArtifactStoreNotFoundError  no such artifact, version or alias
    │   ├── VersionConflictError        an explicit version (number or name) already holds different content
    │   ├── InvalidVersionError         a version number or version name that cannot be used (also an ArtifactError)
    │   ├── VersionInUseError           rm of a version an alias points at or a later run consumed
    │   ├── BlobsCollectedError         a commit whose blobs a concurrent gc deleted (ingest again)
    │   └── IntegrityError              stored content no longer matches its digest
    ├── ConfigurationError            settings that cannot work (unknown store type, bad routing rule)
    │   └── InvalidSettingError         one setting's value is malformed (names the setting, value, what is accepted)
    ├── BackendError                  a backend adapter failed
    │   ├── UnknownBackendError         no adapter registered under that name
    │   ├── BackendNotInstalledError    the adapter's SDK is missing (message holds the pip command)
    │   └── DeliveryError               a delivery to a backend failed (retryable unless stated)
    │       └── DeliveryPendingError      a read through a backend came before the delivery it needs
    └── CIError                       the CI-provider bridge (subclasses live in tracelet_artifacts.ci)
"""

from __future__ import annotations


class TraceletError(Exception):
    """Root of every error raised by tracelet-artifacts."""


class ArtifactError(TraceletError):
    """Bad input given to the artifact builder."""


class InvalidArtifactNameError(ArtifactError):
    """An artifact name that cannot be stored or addressed."""


class InvalidArtifactPathError(ArtifactError):
    """A path inside an artifact that is absolute, escapes the artifact, or is used twice."""


class ArtifactFileError(ArtifactError):
    """A local file or folder that is missing, unreadable or of the wrong kind."""


class ContentAnalysisError(ArtifactFileError):
    """A file whose content cannot be analysed: malformed, truncated, too large or unsafe."""


class ContentTooLargeError(ContentAnalysisError):
    """A file larger than the analysis limit for its format (the limit is in the message)."""


class SerializationError(ArtifactError):
    """An object that the chosen serializer cannot write."""


class UnsafeLoadError(SerializationError):
    """Content that would run code when loaded (pickle, a full ``torch.load``); pass ``allow_pickle=True``
    only for content you trust."""


class UnsupportedReferenceError(ArtifactError):
    """A reference URI whose scheme is not supported."""


class ModelFrameworkError(ArtifactError):
    """A model whose framework cannot be detected or saved."""


class ArtifactStoreError(TraceletError):
    """The artifact store could not complete an operation."""


class ArtifactStoreNotFoundError(ArtifactStoreError):
    """No artifact, version or alias matches the request."""


class VersionConflictError(ArtifactStoreError):
    """An explicit version already exists with different content."""


class InvalidVersionError(ArtifactStoreError, ArtifactError):
    """A version (``0``, ``v0``) or version name (``best``, ``1 2``) that cannot name a version."""


class VersionInUseError(ArtifactStoreError):
    """A version that cannot be deleted as asked: an alias points at it or a later run consumed it."""


class BlobsCollectedError(ArtifactStoreError):
    """A commit named blobs that a concurrent gc deleted after they were stored; ingesting again fixes it."""

    def __init__(self, digests: tuple[str, ...] | list[str]) -> None:
        super().__init__(f"{len(digests)} blob(s) of this version were collected by a concurrent gc "
                         f"({', '.join(d[:12] + '…' for d in digests[:3])}); log it again.")
        self.digests = tuple(digests)


class IntegrityError(ArtifactStoreError):
    """Stored content no longer matches the digest it was stored under."""


class ConfigurationError(TraceletError):
    """Settings that cannot work together or name something that does not exist."""


class InvalidSettingError(ConfigurationError, ValueError):
    """A setting (argument, ``TRACELET_*`` variable or ``.env`` key) whose value cannot be used.

    ``setting`` is the name as the user wrote it, ``value`` what was given, ``accepted`` what would work.
    """

    def __init__(self, message: str, *, setting: str, value: object, accepted: str) -> None:
        super().__init__(message)
        self.setting, self.value, self.accepted = setting, value, accepted


class BackendError(TraceletError):
    """A backend adapter failed."""


class UnknownBackendError(BackendError, ConfigurationError):
    """No adapter is registered under the requested name."""


class BackendNotInstalledError(BackendError):
    """The SDK that a backend adapter needs is not installed."""


class DeliveryError(BackendError):
    """Delivering an artifact to a backend failed.

    ``retryable`` says whether the delivery queue should try again later.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class DeliveryPendingError(DeliveryError):
    """A read through a backend found this run's delivery of the artifact still pending; ``exp.flush()``
    waits for it."""

class CIError(TraceletError):
    """The CI-provider bridge failed; see ``tracelet_artifacts.ci`` for the subclasses."""
