"""What each backend holds of a version, entry by entry, read from the catalog's outbox and receipts.

One vocabulary for ``show``, ``ls`` and the API: an entry is *uploaded*, *referenced* (readable elsewhere,
or on this machine only), *not held* (with the reason), or the whole delivery is *pending* or *failed*.
A delivery only counts as complete when a reader elsewhere can get every entry it holds; a read through a
backend waits for this run's deliveries to it first (``await_deliveries``).

The version itself, in the store, is *committed* (visible, its blobs not yet synced), *durable*, *lost* (a
crash of the machine tore its content before it was durable) or *unsynced* (a store that never syncs):
``durability_status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tracelet_artifacts.errors import DeliveryError, DeliveryPendingError
from tracelet_artifacts.store.outbox import DeliveryState, Outbox
from tracelet_artifacts.values import ArtifactVersion, Receipt

UPLOADED, REFERENCED, LOCAL_ONLY, NOT_HELD = "uploaded", "referenced", "referenced (this machine only)", "not held"
PENDING, FAILED = "pending", "failed"


@dataclass(frozen=True)
class EntryStatus:
    """One line of a backend's status for a version: the state of one entry (or of the whole delivery)."""

    backend: str
    state: str
    path: str = ""
    detail: str = ""


@dataclass(frozen=True)
class BackendStatus:
    """Where one version stands with one backend (for one run)."""

    backend: str
    run_id: str
    state: str  # done, partial (something only this machine can read, or not held), pending, failed
    entries: tuple[EntryStatus, ...]
    locator: str | None = None
    view_command: str | None = None

    @property
    def summary(self) -> str:
        """``mlflow:done``-style word for tables."""
        return f"{self.backend}:{self.state}"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())[:300]


def backend_status(delivery: DeliveryState) -> BackendStatus:
    """The status of one outbox row, entry by entry when its receipt is in."""
    backend = delivery.backend
    if delivery.status in ("pending", "inflight"):
        detail = f"attempt {delivery.attempts}" if delivery.attempts else "not tried yet"
        if delivery.last_error:
            detail += f"; last error: {_one_line(delivery.last_error)}"
        return BackendStatus(backend, delivery.run_id, PENDING, (EntryStatus(backend, PENDING, "", detail),))
    if delivery.status == "failed":
        line = EntryStatus(backend, FAILED, "", _one_line(delivery.last_error) or "no error recorded")
        return BackendStatus(backend, delivery.run_id, FAILED, (line,))
    receipt = Receipt.from_dict(delivery.receipt) if delivery.receipt else None
    if receipt is None:  # done without a receipt: nothing tells what it holds
        return BackendStatus(backend, delivery.run_id, "done", ())
    lines: list[EntryStatus] = []
    notes = dict(receipt.not_held)
    for path in receipt.uploaded:
        lines.append(EntryStatus(backend, UPLOADED, path, notes.pop(path, "")))
    unreachable = set(receipt.unreachable)
    for path in receipt.referenced:
        uri = receipt.reference_uris.get(path, path)
        if path in unreachable:
            lines.append(EntryStatus(backend, LOCAL_ONLY, path, f"{uri}: readers elsewhere cannot open it"))
        else:
            lines.append(EntryStatus(backend, REFERENCED, path, uri))
    lines += [EntryStatus(backend, NOT_HELD, path, why) for path, why in notes.items()]
    gaps = any(line.state in (LOCAL_ONLY, NOT_HELD) for line in lines)
    return BackendStatus(backend, delivery.run_id, "partial" if gaps else "done", tuple(lines),
                         receipt.locator, receipt.view_command)


def durability_status(record: ArtifactVersion, *, bucket: bool = False) -> tuple[str, str]:
    """(state, what it means) of a version's content in the store: the line ``show`` and the web view print.
    ``bucket``: the store's blobs live in a team's bucket (durable once there)."""
    state = record.durability
    if state == "durable":
        return state, "in the team's bucket" if bucket else "synced to disk"
    if state == "committed":
        return state, ("visible, not yet durable: its blobs are being synced in the background; "
                       "exp.flush() and closing the store wait for it")
    if state == "lost":
        return state, record.durability_detail or "its content did not survive a crash"
    return state, "stored by a store that never syncs (TRACELET_DURABILITY=none)"


def version_status(deliveries: Iterable[DeliveryState]) -> list[BackendStatus]:
    """Every backend's status for a version (one per backend and run), in delivery order."""
    return [backend_status(d) for d in deliveries]


def refs(deliveries: Sequence[DeliveryState]) -> str:
    """``cfg:v1`` / ``cfg:v1, cfg:v2`` (at most three named) for messages about deliveries."""
    named = list(dict.fromkeys(f"{d.name}:v{d.version}" for d in deliveries))
    return ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")


def await_deliveries(outbox: Outbox, backend: str, name: str | None, run_id: str, timeout: float,
                     *, wake: Callable[[str], None]) -> None:
    """Wait up to ``timeout`` s until ``run_id``'s deliveries of ``name`` (or of everything) to ``backend``
    are done (``wake`` nudges the backend's worker). DeliveryPendingError if one is still pending then,
    DeliveryError if one failed."""
    deadline = time.monotonic() + timeout
    while True:
        states = [d for d in outbox.deliveries(name, backend=backend, run_id=run_id) if d.status != "done"]
        waiting = [d for d in states if d.status in ("pending", "inflight")]
        if not waiting:
            break
        if time.monotonic() >= deadline:
            tried = f" (attempt {waiting[0].attempts}; last error: {waiting[0].last_error})" \
                if waiting[0].last_error else ""
            verb = "is" if len(waiting) == 1 else "are"
            raise DeliveryPendingError(
                f"{refs(waiting)} {verb} still being delivered to {backend}{tried}; call exp.flush() to wait "
                f"for it, or pass wait=SECONDS (waited {timeout:g} s).")
        wake(backend)
        time.sleep(0.05)
    if states:
        raise DeliveryError(f"{refs(states)} could not be delivered to {backend}: {states[0].last_error}; "
                            "`tracelet-artifacts sync` retries it.", retryable=False)
