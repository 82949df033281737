"""Pipeline messages in the service store: ``store.save(step_id="extract", message=obj)`` keeps any JSON-able or
picklable object as a one-entry artifact named after the step, and ``store.get(step_id="extract")`` gives back
an equal object.

An object that survives JSON unchanged is stored as JSON; anything else is pickled. A pickle is loaded back
only when this store wrote those very bytes in this process (their digest is in ``trusted``) or the caller
passes ``allow_pickle=True``: unpickling bytes someone else wrote runs whatever code they carry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableSet
from typing import Any

from tracelet_artifacts import serialize
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.errors import SerializationError, UnsafeLoadError
from tracelet_artifacts.store.objects import verified_bytes
from tracelet_artifacts.values import ArtifactType, ArtifactVersion

__all__ = ["MESSAGE_KEY", "is_message", "message_artifact", "read_message"]

#: The metadata key that marks a message artifact; its value is the serializer of the ``message`` entry.
MESSAGE_KEY = "tracelet.message"


def _serializer_for(message: Any) -> str:
    """``json`` when the object reads back equal from JSON (tuples and sets do not), else ``pickle``."""
    try:
        if json.loads(serialize.to_json_bytes(message)) == message:
            return "json"
    except (TypeError, ValueError, OverflowError):
        pass
    return "pickle"


def message_artifact(step_id: str, message: Any) -> TraceletArtifact:
    """The artifact that holds ``message`` under the name ``step_id``; SerializationError when it is
    neither JSON-able nor picklable (the message says what is accepted)."""
    serializer = _serializer_for(message)
    try:
        return TraceletArtifact(step_id, ArtifactType.CUSTOM, metadata={MESSAGE_KEY: serializer}).add_object(
            message, "message", serializer)
    except SerializationError as exc:
        raise SerializationError(
            f"save(message=...) stores objects that JSON or pickle can write; {type(message).__name__} is "
            f"neither ({exc}). Convert it to plain data first."
        ) from exc


def is_message(record: ArtifactVersion) -> bool:
    return MESSAGE_KEY in record.manifest.metadata


def read_message(record: ArtifactVersion, read: Callable[[str], bytes], trusted: MutableSet[str], *,
                 allow_pickle: bool) -> Any:
    """The object a message version holds (its bytes checked against their digest first)."""
    serializer = str(record.manifest.metadata[MESSAGE_KEY])
    entry = record.manifest.entry(f"message.{serialize.EXTENSIONS[serializer]}")
    data = verified_bytes(entry, read, f"The message of {record.ref}", "save it again")
    own = serializer == "pickle" and entry.digest in trusted
    try:
        return serialize.deserialize_object(data, serializer, allow_pickle=allow_pickle or own,
                                            what=f"The message of {record.ref}")
    except UnsafeLoadError as exc:
        raise UnsafeLoadError(f"{exc} get(step_id=..., allow_pickle=True) loads it.") from None


def remember(record: ArtifactVersion, trusted: MutableSet[str]) -> None:
    """Trust the pickled message this store just wrote (its bytes came from this process)."""
    if record.manifest.metadata.get(MESSAGE_KEY) == "pickle":
        trusted.add(record.manifest.entry("message.pkl").digest)
