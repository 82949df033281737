"""``Capabilities``: what a backend can hold. Adapters declare them, the router reads them to plan, the docs
matrix prints them; a value of the ground floor because three layers share it and none of them owns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

#: URI schemes every reader of a backend can open (given credentials): object stores and web servers.
SHARED_SCHEMES = frozenset({"s3", "gs", "gcs", "az", "abfs", "http", "https"})


@dataclass(frozen=True)
class Capabilities:
    """What a backend can hold; the router and the docs matrix read these.

    ``readable_schemes`` are the URI schemes whose references the backend's *other* readers (a colleague
    on the tracking server, the same user after the working folder is cleaned) can open. A started
    adapter adds ``file`` when the backend itself lives on this machine's filesystem (MLflow on sqlite,
    a local Aim repo).
    """

    model_registry: bool = False
    media: bool = False
    references: bool = False
    aliases: bool = False
    versioning: bool = False
    readable_schemes: frozenset[str] = SHARED_SCHEMES

    def readable(self, uri: str) -> bool:
        """Whether the backend's other readers can open ``uri``."""
        return (urlparse(uri).scheme or "file").lower() in self.readable_schemes
