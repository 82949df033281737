"""Settings read with pydantic-settings: explicit arguments > ``TRACELET_*`` environment > ``.env`` > defaults.

Settings are read when an object is built (never at import), so a changed environment is seen. A value that
cannot be used raises ``InvalidSettingError`` (a ``ConfigurationError``) in one line naming the setting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tracelet_artifacts.redact import redact_value
from tracelet_artifacts.settings_errors import OneLineErrors

DEFAULT_WATCH_DIRS = ("./checkpoints", "./outputs", "./artifacts")
_ROUTING_EXAMPLE = '{"model": ["mlflow"], "image": ["wandb"]}'
_OPTIONS_EXAMPLE = '{"mlflow": {"tracking_uri": "http://127.0.0.1:5000"}}'


def _split_csv(value: Any) -> Any:
    """``"a, b"`` → ``["a", "b"]``; lists pass through (so env vars can be comma-separated)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _masked_repr_args(self: BaseModel) -> Any:
    """What repr() and str() of settings show: tokens and passwords (in backend options, URLs) masked."""
    return [(name, redact_value(value, name or "")) for name, value in BaseModel.__repr_args__(self)]


class TraceletSettings(OneLineErrors, BaseSettings):
    """Every setting of the SDK, from ``TRACELET_<NAME>`` environment variables.

    Example::

        TraceletSettings()                                  # env and defaults
        TraceletSettings(store_path="/data/.tracelet")      # explicit beats env
    """

    model_config = SettingsConfigDict(env_prefix="TRACELET_", env_file=".env", extra="ignore",
                                      validate_default=True)

    enable_artifacts: bool = True
    automagic_artifacts: bool = False
    watch_filesystem: bool = False
    artifact_watch_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path(p) for p in DEFAULT_WATCH_DIRS])
    capture_include: Annotated[list[str], NoDecode] = Field(default_factory=list)
    capture_exclude: Annotated[list[str], NoDecode] = Field(default_factory=list)
    capture_all_ranks: bool = False
    store_path: Path = Path(".tracelet")
    store_type: Literal["local", "memory"] = "local"  # what ArtifactStoreFactory.create() builds
    # How blobs reach the disk: "group" (synced together off the caller's thread; a version is committed at once
    # and durable when its sync finishes), "per-blob" (each fsynced before it is named) or "none" (never synced).
    durability: Literal["group", "per-blob", "none"] = "group"
    # A team's shared store: the catalog on PostgreSQL, the blobs in an S3-compatible bucket (store_path
    # then holds this machine's blob cache). The URL's password stays hidden in reprs and messages.
    catalog_url: SecretStr | None = None
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    reference_threshold_mb: float = Field(100.0, gt=0)
    routing: dict[str, list[str]] = Field(default_factory=dict, examples=[_ROUTING_EXAMPLE])
    backends: Annotated[list[str], NoDecode] = Field(default_factory=list)
    backend_options: dict[str, dict[str, Any]] = Field(default_factory=dict, examples=[_OPTIONS_EXAMPLE])
    delivery_max_attempts: int = Field(6, ge=1)
    delivery_backoff_s: float = Field(0.5, ge=0)
    delivery_backoff_max_s: float = Field(60.0, ge=0)
    flush_timeout_s: float = Field(120.0, ge=0)
    read_wait_s: float = Field(30.0, ge=0)  # a read through a backend waits this long for the run's deliveries
    submit_queue_max: int = Field(1000, ge=1)  # submit_artifact blocks its caller while this many wait to be stored
    watch_settle_s: float = Field(1.0, gt=0)  # the file watcher: seconds without change when no close is seen
    watch_polling: bool = False  # the file watcher polls instead of using inotify (e.g. network filesystems)
    progress: bool = True  # a bar on stderr (a terminal only) while stop() waits more than a second for deliveries
    # What a watched folder's outputs were made from: NAME:VERSION / NAME@ALIAS refs or files the store holds;
    # recorded as the watching run's inputs (lineage).
    watch_inputs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Retention (``tracelet-artifacts prune``): artifact name or glob -> rule ({"keep_last": 5, "keep_days": 30,
    # "keep_aliased": true, "keep_best": 3, "best_by": "val_loss", "best_mode": "min"}); checked by
    # retention.parse_rules when used. ci_cache_retention: one rule for the CI artifact cache.
    retention: dict[str, dict[str, Any]] = Field(default_factory=dict)
    ci_cache_retention: dict[str, Any] | None = None

    _split = field_validator("artifact_watch_dirs", "backends", "capture_include", "capture_exclude",
                             "watch_inputs", mode="before")(_split_csv)

    __repr_args__ = _masked_repr_args

    @property
    def reference_threshold_bytes(self) -> int:
        return int(self.reference_threshold_mb * 1024 * 1024)


class ExperimentConfig(OneLineErrors, BaseModel):
    """Per-experiment overrides layered over ``TraceletSettings`` (unset fields keep the settings' value)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not silently ignored
    __repr_args__ = _masked_repr_args

    enable_artifacts: bool | None = None
    automagic_artifacts: bool | None = None
    watch_filesystem: bool | None = None
    artifact_watch_dirs: list[Path] | None = None
    store_path: Path | None = None
    reference_threshold_mb: float | None = None
    routing: dict[str, list[str]] | None = Field(None, examples=[_ROUTING_EXAMPLE])
    backend_options: dict[str, dict[str, Any]] | None = Field(None, examples=[_OPTIONS_EXAMPLE])

    _split = field_validator("artifact_watch_dirs", mode="before")(_split_csv)

    def apply(self, settings: TraceletSettings) -> TraceletSettings:
        """A copy of ``settings`` with this config's set fields applied."""
        return settings.model_copy(update=self.model_dump(exclude_none=True))


def option_sources(options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Where each backend option was set: ``TRACELET_BACKEND_OPTIONS`` when the environment holds that very
    value, else ``backend_options`` (given in code: settings, ExperimentConfig or the adapter's options)."""
    try:
        from_env = json.loads(os.environ.get("TRACELET_BACKEND_OPTIONS") or "{}")
    except ValueError:
        from_env = {}
    from_env = from_env if isinstance(from_env, dict) else {}
    out: dict[str, dict[str, str]] = {}
    for backend, values in options.items():
        found = from_env.get(backend)
        env_values: dict[str, Any] = found if isinstance(found, dict) else {}
        out[backend] = {key: "TRACELET_BACKEND_OPTIONS" if key in env_values and env_values[key] == value
                        else "backend_options" for key, value in values.items()}
    return out
