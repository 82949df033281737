"""``Receipt``: what a backend did with one artifact version (or that the delivery is still pending, or failed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ReceiptStatus = Literal["done", "pending", "failed"]


@dataclass(frozen=True)
class Receipt:
    """What a backend did with one artifact version (or that it is still pending / failed)."""

    backend: str
    status: ReceiptStatus
    artifact: str
    version: int
    remote_id: str | None = None
    remote_version: str | None = None
    uri: str | None = None
    uploaded: tuple[str, ...] = ()
    referenced: tuple[str, ...] = ()
    not_held: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    #: Entry path (or external URI) → the URI the backend holds as a reference for it.
    reference_uris: Mapping[str, str] = field(default_factory=dict)
    #: Referenced paths/URIs that only this machine can read (the backend's other readers cannot).
    unreachable: tuple[str, ...] = ()
    #: Where to open the artifact in the backend: a run URL under the tracking server, a W&B run path,
    #: a ClearML task id, an Aim run hash.
    locator: str | None = None
    #: The command that shows it locally (``mlflow ui --backend-store-uri …``, ``aim up --repo …``).
    view_command: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["not_held"], data["reference_uris"] = dict(self.not_held), dict(self.reference_uris)
        data["uploaded"], data["referenced"] = list(self.uploaded), list(self.referenced)
        data["unreachable"] = list(self.unreachable)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}  # receipts written by a newer release
        for key in ("uploaded", "referenced", "unreachable"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)
