"""RoutingPolicy: every rule checked on the plan (data) it produces, before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tracelet_artifacts import ArtifactType, Capabilities, RoutingPolicy, TraceletArtifact
from tracelet_artifacts.artifact import Manifest, ManifestEntry, Reference, compute_digest
from tracelet_artifacts.errors import ConfigurationError
from tracelet_artifacts.routing import DEFAULT_THRESHOLD_BYTES, SHARED_SCHEMES, BackendPlan

pytestmark = pytest.mark.usefixtures("isolated")

# Backends that hold references and live on this filesystem (file:// blob references readable by their readers).
REFS = Capabilities(references=True, readable_schemes=SHARED_SCHEMES | {"file"})
NO_REFS = Capabilities()
REMOTE_REFS = Capabilities(references=True)  # e.g. an MLflow tracking server: readers elsewhere
ALL_FOUR = {"mlflow": REFS, "wandb": REFS, "clearml": REFS, "aim": NO_REFS, "local": REFS}
MB = 1024 * 1024


def _manifest(artifact_type: ArtifactType | str, *, sizes: Mapping[str, int] | None = None,
              references: tuple[str, ...] = (), metadata: Mapping[str, Any] | None = None) -> Manifest:
    """A manifest with entries of the given sizes (no real files needed, so 'huge' costs nothing)."""
    entries = tuple(ManifestEntry(path, size, f"{i:064x}", "application/octet-stream", False)
                    for i, (path, size) in enumerate(sorted((sizes or {"a.bin": 10}).items())))
    refs = tuple(Reference(uri) for uri in references)
    return Manifest("art", ArtifactType.parse(artifact_type), compute_digest(entries, refs), entries, refs,
                    metadata=dict(metadata or {}))


def _targets(available: Mapping[str, Capabilities], artifact_type: ArtifactType | str, **kwargs: Any) -> tuple:
    policy_args = {k: kwargs.pop(k) for k in ("overrides", "threshold_bytes") if k in kwargs}
    return RoutingPolicy(available, **policy_args).plan(_manifest(artifact_type, **kwargs)).targets


@pytest.mark.parametrize("artifact_type", [ArtifactType.MODEL, ArtifactType.CHECKPOINT, ArtifactType.WEIGHTS])
def test_models_checkpoints_and_weights_go_to_mlflow(artifact_type: ArtifactType) -> None:
    assert _targets(ALL_FOUR, artifact_type) == ("mlflow", "local")


@pytest.mark.parametrize("artifact_type", [ArtifactType.IMAGE, ArtifactType.AUDIO, ArtifactType.VIDEO,
                                           ArtifactType.VISUALIZATION])
def test_media_goes_to_wandb(artifact_type: ArtifactType) -> None:
    assert _targets(ALL_FOUR, artifact_type) == ("wandb", "local")


def test_datasets_go_to_clearml() -> None:
    assert _targets(ALL_FOUR, ArtifactType.DATASET) == ("clearml", "local")


@pytest.mark.parametrize("artifact_type", [ArtifactType.CONFIG, ArtifactType.CODE])
def test_config_and_code_go_to_every_enabled_backend_in_the_users_order(artifact_type: ArtifactType) -> None:
    available = {"aim": NO_REFS, "wandb": REFS, "mlflow": REFS, "local": REFS}
    assert _targets(available, artifact_type) == ("aim", "wandb", "mlflow", "local")


@pytest.mark.parametrize("artifact_type", [ArtifactType.SAMPLE, ArtifactType.REPORT, ArtifactType.CUSTOM])
def test_other_types_go_to_the_first_enabled_backend(artifact_type: ArtifactType) -> None:
    available = {"wandb": REFS, "mlflow": REFS, "local": REFS}
    assert _targets(available, artifact_type) == ("wandb", "local")


def test_only_enabled_backends_are_chosen() -> None:
    available = {"wandb": REFS, "local": REFS}
    plan = RoutingPolicy(available).plan(_manifest(ArtifactType.MODEL))
    assert "mlflow" not in plan.targets
    assert plan.targets == ("wandb", "local")
    assert "mlflow" in plan.skipped


def test_a_backend_that_is_not_installed_is_skipped_with_its_reason() -> None:
    policy = RoutingPolicy({"mlflow": REFS, "local": REFS},
                           unavailable={"clearml": "pip install 'tracelet-artifacts[clearml]'"})
    plan = policy.plan(_manifest(ArtifactType.DATASET))
    assert plan.targets == ("mlflow", "local")
    assert plan.skipped == {"clearml": "pip install 'tracelet-artifacts[clearml]'"}


def test_with_no_remote_backend_only_the_embedded_store_is_planned() -> None:
    for artifact_type in ArtifactType:
        assert _targets({"local": REFS}, artifact_type) == ("local",)


def test_the_embedded_store_is_always_last_even_when_not_listed() -> None:
    assert _targets({"mlflow": REFS}, ArtifactType.MODEL) == ("mlflow", "local")


def test_embedded_store_plan_holds_every_entry_and_reference() -> None:
    manifest = _manifest(ArtifactType.MODEL, sizes={"big.bin": 500 * MB, "small.txt": 3},
                         references=("s3://b/raw",))
    local = RoutingPolicy(ALL_FOUR).plan(manifest).for_backend("local")
    assert local.uploads == ("big.bin", "small.txt")
    assert local.external_references == ("s3://b/raw",)
    assert local.entry_references == ()


def test_preferred_backends_in_metadata_override_the_type_rule() -> None:
    assert _targets(ALL_FOUR, ArtifactType.MODEL, metadata={"preferred_backends": ["wandb", "clearml"]}) == (
        "wandb", "clearml", "local")


def test_preferred_backends_may_be_a_single_string() -> None:
    assert _targets(ALL_FOUR, ArtifactType.IMAGE, metadata={"preferred_backends": "aim"}) == ("aim", "local")


def test_preferred_backends_local_only_keeps_the_artifact_out_of_every_backend() -> None:
    assert _targets(ALL_FOUR, ArtifactType.DATASET, metadata={"preferred_backends": ["local"]}) == ("local",)
    assert _targets(ALL_FOUR, ArtifactType.CONFIG, metadata={"preferred_backends": "local"}) == ("local",)


def test_preferred_backends_drop_the_ones_not_enabled() -> None:
    available = {"mlflow": REFS, "wandb": REFS, "local": REFS}
    plan = RoutingPolicy(available).plan(_manifest(ArtifactType.MODEL,
                                                   metadata={"preferred_backends": ["clearml", "wandb"]}))
    assert plan.targets == ("wandb", "local")
    assert "clearml" in plan.skipped


def test_preferred_backends_none_enabled_fall_back_to_the_type_rule() -> None:
    available = {"mlflow": REFS, "local": REFS}
    plan = RoutingPolicy(available).plan(_manifest(ArtifactType.MODEL, metadata={"preferred_backends": ["aim"]}))
    assert plan.targets == ("mlflow", "local")
    assert plan.for_backend("mlflow").reason == "default rule for the type"


def test_settings_override_replaces_the_default_rule() -> None:
    assert _targets(ALL_FOUR, ArtifactType.MODEL, overrides={"model": ["wandb", "aim"]}) == ("wandb", "aim", "local")
    assert _targets(ALL_FOUR, ArtifactType.DATASET, overrides={"DATASET": ["*"]}) == (
        "mlflow", "wandb", "clearml", "aim", "local")


def test_settings_override_leaves_other_types_alone() -> None:
    assert _targets(ALL_FOUR, ArtifactType.IMAGE, overrides={"model": ["aim"]}) == ("wandb", "local")


def test_preferred_backends_beat_the_settings_override() -> None:
    assert _targets(ALL_FOUR, ArtifactType.MODEL, overrides={"model": ["aim"]},
                    metadata={"preferred_backends": ["clearml"]}) == ("clearml", "local")


def test_override_for_an_unknown_type_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="spreadsheet"):
        RoutingPolicy(ALL_FOUR, overrides={"spreadsheet": ["mlflow"]})


def test_default_threshold_is_100_mb() -> None:
    assert DEFAULT_THRESHOLD_BYTES == 100 * MB
    manifest = _manifest(ArtifactType.MODEL, sizes={"at.bin": 100 * MB, "over.bin": 100 * MB + 1})
    mlflow = RoutingPolicy(ALL_FOUR).plan(manifest).for_backend("mlflow")
    assert mlflow.uploads == ("at.bin",)
    assert mlflow.entry_references == ("over.bin",)


def test_files_over_the_threshold_go_as_references_where_supported() -> None:
    manifest = _manifest(ArtifactType.CONFIG, sizes={"big.bin": 2000, "small.json": 10})
    plan = RoutingPolicy(ALL_FOUR, threshold_bytes=1000).plan(manifest)
    wandb = plan.for_backend("wandb")
    assert (wandb.uploads, wandb.entry_references, dict(wandb.not_held)) == (("small.json",), ("big.bin",), {})


def test_files_over_the_threshold_are_uploaded_and_flagged_where_references_are_unsupported() -> None:
    manifest = _manifest(ArtifactType.CONFIG, sizes={"big.bin": 2000, "small.json": 10})
    aim = RoutingPolicy(ALL_FOUR, threshold_bytes=1000).plan(manifest).for_backend("aim")
    assert aim.uploads == ("big.bin", "small.json")
    assert aim.entry_references == ()
    assert set(aim.not_held) == {"big.bin"}
    assert "cannot hold references" in aim.not_held["big.bin"]


def test_force_reference_sends_every_entry_as_a_reference() -> None:
    manifest = _manifest(ArtifactType.MODEL, sizes={"a.bin": 1, "b.bin": 2}, metadata={"force_reference": True})
    plan = RoutingPolicy(ALL_FOUR).plan(manifest)
    mlflow = plan.for_backend("mlflow")
    assert (mlflow.uploads, mlflow.entry_references) == ((), ("a.bin", "b.bin"))
    assert plan.for_backend("local").uploads == ("a.bin", "b.bin")


def test_force_reference_on_a_backend_without_references_uploads_and_flags() -> None:
    manifest = _manifest(ArtifactType.MODEL, sizes={"a.bin": 1}, metadata={"force_reference": True,
                                                                           "preferred_backends": ["aim"]})
    aim = RoutingPolicy(ALL_FOUR).plan(manifest).for_backend("aim")
    assert aim.uploads == ("a.bin",) and set(aim.not_held) == {"a.bin"}


def test_force_reference_false_changes_nothing() -> None:
    manifest = _manifest(ArtifactType.MODEL, sizes={"a.bin": 1}, metadata={"force_reference": False})
    assert RoutingPolicy(ALL_FOUR).plan(manifest).for_backend("mlflow").uploads == ("a.bin",)


def test_external_references_go_to_backends_that_hold_references() -> None:
    manifest = _manifest(ArtifactType.CONFIG, references=("s3://bucket/data.parquet", "https://host/x"))
    plan = RoutingPolicy(ALL_FOUR).plan(manifest)
    assert plan.for_backend("mlflow").external_references == ("s3://bucket/data.parquet", "https://host/x")


def test_external_references_are_flagged_where_unsupported() -> None:
    manifest = _manifest(ArtifactType.CONFIG, references=("s3://bucket/data.parquet",))
    aim = RoutingPolicy(ALL_FOUR).plan(manifest).for_backend("aim")
    assert aim.external_references == ()
    assert "s3://bucket/data.parquet" in aim.not_held


def test_plan_records_why_each_backend_was_chosen() -> None:
    plan = RoutingPolicy({"wandb": REFS, "local": REFS}).plan(_manifest(ArtifactType.REPORT))
    assert "first enabled backend" in plan.for_backend("wandb").reason
    preferred = RoutingPolicy(ALL_FOUR).plan(_manifest("model", metadata={"preferred_backends": "aim"}))
    assert preferred.for_backend("aim").reason == "metadata['preferred_backends']"


def test_plan_identifies_the_artifact_and_round_trips_as_data() -> None:
    manifest = _manifest(ArtifactType.MODEL, sizes={"x.bin": 5}, references=("gs://b/k",))
    plan = RoutingPolicy(ALL_FOUR).plan(manifest)
    assert (plan.artifact, plan.digest) == ("art", manifest.digest)
    for backend_plan in plan.backends:
        assert BackendPlan.from_dict(backend_plan.to_dict()) == backend_plan
    with pytest.raises(KeyError):
        plan.for_backend("clearml")


def test_plan_from_a_real_builder() -> None:
    art = TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams")
    plan = RoutingPolicy({"mlflow": REFS, "wandb": REFS, "local": REFS}).plan(art.freeze())
    assert plan.targets == ("mlflow", "wandb", "local")
    assert all(p.uploads == ("hparams.json",) for p in plan.backends)


def test_large_files_are_uploaded_where_a_file_reference_would_not_be_readable_by_the_backends_readers() -> None:
    manifest = _manifest(ArtifactType.MODEL, sizes={"big.bin": 2000, "small.json": 10})
    plan = RoutingPolicy({"mlflow": REMOTE_REFS, "local": REFS}, threshold_bytes=1000).plan(manifest)
    mlflow = plan.for_backend("mlflow")
    assert (mlflow.uploads, mlflow.entry_references, mlflow.unreachable) == (("big.bin", "small.json"), (), ())


def test_large_files_of_a_bucket_backed_store_go_as_references_every_reader_can_open() -> None:
    manifest = _manifest(ArtifactType.MODEL, sizes={"big.bin": 2000, "small.json": 10})
    policy = RoutingPolicy({"mlflow": REMOTE_REFS, "local": REFS}, threshold_bytes=1000, blob_scheme="s3")
    mlflow = policy.plan(manifest).for_backend("mlflow")
    assert (mlflow.uploads, mlflow.entry_references, mlflow.unreachable) == (("small.json",), ("big.bin",), ())


def test_force_reference_is_honoured_and_flags_references_only_this_machine_can_read() -> None:
    manifest = _manifest(ArtifactType.MODEL, sizes={"a.bin": 1}, metadata={"force_reference": True},
                         references=("file:///data/raw.parquet", "s3://bucket/raw.parquet"))
    mlflow = RoutingPolicy({"mlflow": REMOTE_REFS, "local": REFS}).plan(manifest).for_backend("mlflow")
    assert mlflow.entry_references == ("a.bin",)
    assert mlflow.unreachable == ("a.bin", "file:///data/raw.parquet")


def test_a_plan_round_trips_through_the_outbox_with_its_unreachable_references() -> None:
    plan = BackendPlan("mlflow", ("a",), ("b",), ("file:///x",), {"c": "why"}, "rule", ("b", "file:///x"))
    assert BackendPlan.from_dict(plan.to_dict()) == plan
    older = {k: v for k, v in plan.to_dict().items() if k != "unreachable"}  # written before the field existed
    assert BackendPlan.from_dict(older).unreachable == ()
