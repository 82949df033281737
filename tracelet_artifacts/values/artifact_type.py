"""What an artifact holds (``ArtifactType``), and the groups of types that routing and the builder treat alike."""

from __future__ import annotations

from enum import Enum

from tracelet_artifacts.errors import ArtifactError


class ArtifactType(str, Enum):
    """What an artifact holds; routing and backends decide by it."""

    MODEL = "model"
    CHECKPOINT = "checkpoint"
    WEIGHTS = "weights"
    DATASET = "dataset"
    SAMPLE = "sample"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    VISUALIZATION = "viz"
    REPORT = "report"
    CONFIG = "config"
    CODE = "code"
    CUSTOM = "custom"

    @classmethod
    def parse(cls, value: ArtifactType | str) -> ArtifactType:
        """Accept an ArtifactType, its value ("viz") or its name ("VISUALIZATION")."""
        if isinstance(value, cls):
            return value
        text = str(value).strip()
        for member in cls:
            if text.lower() in (member.value, member.name.lower()):
                return member
        names = ", ".join(m.name for m in cls)
        raise ArtifactError(f"Unknown artifact type {value!r}; use one of {names}.")


MODEL_TYPES = frozenset({ArtifactType.MODEL, ArtifactType.CHECKPOINT, ArtifactType.WEIGHTS})
MEDIA_TYPES = frozenset(
    {ArtifactType.IMAGE, ArtifactType.AUDIO, ArtifactType.VIDEO, ArtifactType.VISUALIZATION}
)
