"""The backend-by-artifact-type matrix of docs/backends.md, generated from the adapters' declared capabilities
and the default routing rules (a test keeps the page equal to what this module renders).

    python -m tracelet_artifacts.backends.matrix      # prints the table
"""

from __future__ import annotations

from tracelet_artifacts.artifact import MEDIA_TYPES, MODEL_TYPES, ArtifactType, Manifest, ManifestEntry
from tracelet_artifacts.backends import registry
from tracelet_artifacts.backends.base import Capabilities
from tracelet_artifacts.routing import RoutingPolicy

BACKENDS = ("mlflow", "wandb", "clearml", "aim")
BEGIN, END = "<!-- matrix:begin -->", "<!-- matrix:end -->"


def _probe(artifact_type: ArtifactType) -> Manifest:
    entry = ManifestEntry("file", 1, "0" * 64, "application/octet-stream", False)
    return Manifest("probe", artifact_type, "0" * 64, (entry,))


def cell(backend: str, caps: Capabilities, artifact_type: ArtifactType, routed: bool) -> str:
    """What one backend holds for one type: how it gets there and in which forms."""
    forms = ["files"]
    if caps.references:
        forms.append("references")
    if caps.media and artifact_type in MEDIA_TYPES:
        forms.append("media panel")
    if caps.model_registry and artifact_type in MODEL_TYPES:
        forms.append("registered model")
    how = "**default**" if routed else "on request"
    return f"{how}: {', '.join(forms)}"


def render(capabilities: dict[str, Capabilities] | None = None) -> str:
    """The Markdown table: one row per ArtifactType, one column per backend."""
    caps = capabilities or {name: registry.adapter_class(name).capabilities for name in BACKENDS}
    policy = RoutingPolicy({**caps, "local": Capabilities(references=True, aliases=True, versioning=True)})
    lines = ["| type | " + " | ".join(caps) + " |", "|---" * (len(caps) + 1) + "|"]
    for artifact_type in ArtifactType:
        targets = policy.plan(_probe(artifact_type)).targets
        cells = [cell(name, c, artifact_type, name in targets) for name, c in caps.items()]
        lines.append(f"| {artifact_type.name} | " + " | ".join(cells) + " |")
    flags = ["model_registry", "media", "references", "aliases", "versioning"]
    lines += ["", "| capability | " + " | ".join(caps) + " |", "|---" * (len(caps) + 1) + "|"]
    lines += [f"| {flag} | " + " | ".join("yes" if getattr(c, flag) else "no" for c in caps.values()) + " |"
              for flag in flags]
    return "\n".join(lines)


def section(text: str) -> str:
    """The generated part of docs/backends.md (between the markers)."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


if __name__ == "__main__":  # pragma: no cover
    print(render())
