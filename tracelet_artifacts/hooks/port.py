"""The narrow port automatic producers talk to: hand an artifact over, move an alias or add labels on a
version once it is stored, and report what the run consumed (a stored version, or a file the store may
hold) for lineage. ``Experiment`` implements it; the hooks never import ``experiment`` nor touch a store or
catalog themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tracelet_artifacts.artifact import TraceletArtifact
    from tracelet_artifacts.settings import TraceletSettings


@runtime_checkable
class CapturePort(Protocol):
    """What a producer (Lightning or HF callback, ``torch.save`` patch, file watcher) needs from a run.

    Example::

        def produce(port: CapturePort, path: Path) -> None:
            if port.capturing:
                art = TraceletArtifact("out/model.pt", "model").add_file(path, "model.pt")
                port.submit_artifact(art).add_done_callback(...)
    """

    name: str
    settings: TraceletSettings

    @property
    def capturing(self) -> bool:
        """True while the run is started and this process creates versions (global rank 0, or all ranks)."""
        ...

    @property
    def capture_root(self) -> Path:
        """The store's folder: producers stage files under it (same filesystem) and never capture inside it."""
        ...

    def submit_artifact(
        self, artifact: TraceletArtifact, *, aliases: Iterable[str] = ()
    ) -> Future[dict[str, Any]]:
        """Store ``artifact`` in the background; the Future holds a receipt per backend (``"local"`` first)."""
        ...

    def tag_version(
        self, name: str, version: int, *, alias: str | None = None, labels: Iterable[str] = ()
    ) -> None:
        """Point ``alias`` at ``name``'s ``version`` and add ``labels`` to it (after it was stored)."""
        ...

    def use_artifact(self, name: str, version: str | int = ..., *, how: str = ...) -> Any:
        """Record that the run consumed a stored version (a number or an alias); raises when there is none."""
        ...

    def use_file(self, path: str | Path, *, how: str) -> Future[Any]:
        """Record, in the background, that the run read ``path`` if the store holds its content; the Future
        holds that version or None, and never raises."""
        ...


def local_version(receipts: Mapping[str, Any]) -> int | None:
    """The store version a finished ``submit_artifact`` created (None when the local receipt is missing)."""
    local = receipts.get("local")
    return getattr(local, "version", None)
