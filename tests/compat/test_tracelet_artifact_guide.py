"""Tracelet's artifact guide (``docs/artifacts.md`` of prassanna-ravishankar/tracelet), run as written.

Each test is one example of the guide, verbatim except for the package name (``tracelet`` ->
``tracelet_artifacts``). What the guide assumes exists is made by fixtures: the files it adds (``model.pth``,
``config.yaml``, ``report.html``, …) in an empty working folder, ``pytorch_model``, ``sample_input``,
``summary_dict``, and ``exp``, the experiment of its Quick Start, on real MLflow (a SQLite tracking store,
configured the way MLflow users configure it: ``MLFLOW_TRACKING_URI``) and real W&B (offline mode).
Results are read back through the store, and through MLflow's own client where the guide says MLflow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")

from tracelet_artifacts import Experiment  # noqa: E402
from tracelet_artifacts.core.artifacts import ArtifactType  # noqa: E402

GUIDE_FILES = {
    "config.yaml": "learning_rate: 0.001\nbatch_size: 32\n",
    "metrics.json": json.dumps({"accuracy": 0.93, "loss": 0.21}),
    "report.html": "<html><body><h1>Experiment results</h1></body></html>",
    "config.json": json.dumps({"layers": 2}),
    "dataset_info.json": json.dumps({"rows": 10_000_000}),
    "large_report.html": "<html>" + "<p>row</p>" * 10_000 + "</html>",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty folder holding the files the guide adds, with MLflow and W&B configured as their users do."""
    root = tmp_path_factory.mktemp("tracelet-guide")
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith(("TRACELET_", "MLFLOW_", "WANDB_")):
                patch.delenv(key)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        patch.setenv("WANDB_DIR", str(root))
        patch.chdir(root)
        for name, text in GUIDE_FILES.items():
            Path(name).write_text(text)
        torch.manual_seed(0)
        torch.save(torch.nn.Linear(4, 2).state_dict(), "model.pth")
        for fold in range(5):
            torch.save(torch.nn.Linear(4, 2).state_dict(), f"fold_{fold}_model.pth")
        Path("sample.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
        yield root


@pytest.fixture(scope="module")
def exp(workdir: Path) -> Iterator[Experiment]:
    # --- the guide's Quick Start: "Enable Artifact Tracking" ---
    # Enable artifact tracking
    exp = Experiment(
        name="my_experiment",
        backend=["mlflow", "wandb"],
        artifacts=True,              # Enable artifact system
        automagic_artifacts=True     # Enable automatic detection
    )
    exp.start()
    # --- end of the example ---
    yield exp
    exp.stop()
    import wandb

    wandb.teardown()  # W&B keeps its settings (WANDB_DIR here) for the process until torn down


@pytest.fixture
def pytorch_model() -> Any:
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


@pytest.fixture
def sample_input() -> Any:
    return torch.zeros(1, 4)


@pytest.fixture
def summary_dict() -> dict[str, Any]:
    return {"best_epoch": 7, "accuracy": 0.93}


def test_quick_start_starts_an_experiment_on_mlflow_and_wandb_with_automatic_capture(exp: Experiment) -> None:
    assert exp.started and exp.backends == ["mlflow", "wandb"]
    assert exp.settings.enable_artifacts and exp.settings.automagic_artifacts


def test_basic_artifact_logging_stores_files_and_model_and_routes_the_model_to_mlflow(
    exp: Experiment, pytorch_model: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from tracelet_artifacts.core.artifacts import ArtifactType

    # Create and log a model artifact
    model_artifact = exp.create_artifact(
        name="trained_classifier",
        artifact_type=ArtifactType.MODEL,
        description="Trained image classifier model"
    )

    # Add files to the artifact
    model_artifact.add_file("model.pth", "model/classifier.pth")
    model_artifact.add_file("config.yaml", "model/config.yaml")

    # Add model object with metadata
    model_artifact.add_model(pytorch_model, framework="pytorch")

    # Log to all backends
    results = exp.log_artifact(model_artifact)
    print(f"Logged to {len(results)} backends: {list(results.keys())}")

    assert capsys.readouterr().out == f"Logged to 2 backends: {list(results)}\n"
    assert sorted(results) == ["local", "mlflow"]  # the guide's routing table: MODEL -> MLflow
    stored = exp.get_artifact("trained_classifier")
    assert {e.path for e in stored.manifest.entries} >= {"model/classifier.pth", "model/config.yaml"}
    assert stored.manifest.model is not None and stored.manifest.model.framework == "pytorch"
    assert exp.flush(timeout=120).complete
    from mlflow import MlflowClient

    versions = MlflowClient().search_model_versions("name='trained_classifier'")
    assert len(versions) == 1  # registered in MLflow's model registry, as the guide promises


def test_builder_pattern_chains_files_and_objects(exp: Experiment, summary_dict: dict[str, Any]) -> None:
    # Create artifact with builder pattern
    artifact = exp.create_artifact(
        name="experiment_results",
        artifact_type=ArtifactType.REPORT,
        description="Complete experiment results and analysis"
    )

    # Chain operations
    artifact.add_file("report.html", "reports/experiment.html") \
            .add_file("metrics.json", "data/metrics.json") \
            .add_object(summary_dict, "summary", "json")

    exp.log_artifact(artifact)
    assert [e.path for e in exp.get_artifact("experiment_results").manifest.entries] == [
        "data/metrics.json", "reports/experiment.html", "summary.json"]
    assert exp.load_object("experiment_results", "summary") == summary_dict


def test_adding_files_with_and_without_an_artifact_path(exp: Experiment) -> None:
    artifact = exp.create_artifact("added_files", ArtifactType.CUSTOM)

    # Add local files
    artifact.add_file(
        local_path="model.pth",
        artifact_path="model/checkpoint.pth",  # Optional: path in artifact
        description="Best model checkpoint"    # Optional: file description
    )

    # Add multiple files
    files = ["model.pth", "config.yaml", "metrics.json"]
    for file_path in files:
        artifact.add_file(file_path)

    assert [(f.artifact_path, f.description) for f in artifact.files] == [
        ("model/checkpoint.pth", "Best model checkpoint"), ("model.pth", None), ("config.yaml", None),
        ("metrics.json", None)]


def test_adding_objects_serialises_them_once_with_the_named_serializer(exp: Experiment) -> None:
    artifact = exp.create_artifact("added_objects", ArtifactType.CONFIG)

    # Add Python objects with serialization
    config = {"learning_rate": 0.001, "batch_size": 32}
    artifact.add_object(
        obj=config,
        name="hyperparameters",
        serializer="json",  # or "pickle", "yaml"
        description="Training hyperparameters"
    )

    exp.log_artifact(artifact)
    assert exp.load_object("added_objects", "hyperparameters") == {"learning_rate": 0.001, "batch_size": 32}
    assert exp.get_artifact("added_objects").manifest.entry("hyperparameters.json").description == (
        "Training hyperparameters")


def test_external_references_are_recorded_not_uploaded(exp: Experiment) -> None:
    artifact = exp.create_artifact("referenced_data", ArtifactType.DATASET)

    # Add reference to external data (large files, cloud storage)
    artifact.add_reference(
        uri="s3://my-bucket/large-dataset.tar.gz",
        size_bytes=5_000_000_000,  # 5GB
        description="Training dataset stored in S3"
    )

    record = exp.get_artifact(exp.log_artifact(artifact)["local"].artifact)
    assert [(r.uri, r.size_bytes) for r in record.manifest.references] == [
        ("s3://my-bucket/large-dataset.tar.gz", 5_000_000_000)]
    assert record.size_bytes == 0  # nothing was copied


def test_adding_a_model_object_saves_it_with_its_input_example(
    exp: Experiment, pytorch_model: Any, sample_input: Any
) -> None:
    artifact = exp.create_artifact("resnet_like", ArtifactType.MODEL)

    # Add PyTorch model with framework detection
    artifact.add_model(
        model=pytorch_model,
        framework="pytorch",  # auto-detected if not specified
        input_example=sample_input,  # optional
        description="Trained ResNet50 classifier"
    )

    assert artifact.model is not None and artifact.model.framework == "pytorch"
    assert artifact.model.input_example_path == "model/input_example.json"


def test_custom_routing_sends_to_the_preferred_backends(exp: Experiment) -> None:
    artifact = exp.create_artifact("routed_config", ArtifactType.CONFIG).add_file("config.yaml")

    # Override routing for specific artifacts
    artifact.metadata["preferred_backends"] = ["mlflow", "clearml"]

    # Size-based routing (files >100MB use references)
    artifact.metadata["force_reference"] = True

    plan = exp.plan(artifact)
    assert set(plan.targets) == {"local", "mlflow"}  # clearml is not running in this experiment
    assert plan.for_backend("mlflow").entry_references == ("config.yaml",)  # forced: referenced, not uploaded
    assert plan.for_backend("mlflow").reason == "metadata['preferred_backends']"


@pytest.fixture
def model() -> Any:
    """A tiny LightningModule whose validation_step returns its predictions (what the guide's samples are)."""
    pl = pytest.importorskip("pytorch_lightning")

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def training_step(self, batch: Any, _index: int) -> Any:
            x, y = batch
            return torch.nn.functional.cross_entropy(self.layer(x), y)

        def validation_step(self, batch: Any, _index: int) -> Any:
            x, y = batch
            logits = self.layer(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
            return {"predictions": logits.argmax(dim=1), "targets": y}

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Classifier()


@pytest.fixture
def datamodule() -> Any:
    pl = pytest.importorskip("pytorch_lightning")
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    return pl.LightningDataModule.from_datasets(train_dataset=data, val_dataset=data, batch_size=8)


def test_lightning_checkpoints_final_model_and_validation_samples_are_captured(
    workdir: Path, model: Any, datamodule: Any
) -> None:
    import pytorch_lightning as pl

    # Enable artifact auto-detection
    exp = Experiment("lightning_training", artifacts=True, automagic_artifacts=True)
    exp.start()

    # Your normal Lightning training - artifacts captured automatically
    trainer = pl.Trainer(max_epochs=10)
    trainer.fit(model, datamodule)
    # Checkpoints, final model, and samples logged automatically

    exp.stop()

    with Experiment("reader") as reader:
        mine = [v for v in reader.list_artifacts() if v.run_id == exp.run_id]
    kinds = {v.artifact_type for v in mine}
    assert {ArtifactType.CHECKPOINT, ArtifactType.MODEL, ArtifactType.SAMPLE} <= kinds, mine


def test_filesystem_watching_logs_files_created_in_the_watched_folders(workdir: Path) -> None:
    from tracelet_artifacts.core.experiment import ExperimentConfig

    config = ExperimentConfig(
        enable_artifacts=True,
        watch_filesystem=True,  # Enable filesystem watching
        artifact_watch_dirs=["./checkpoints", "./outputs", "./models"]
    )

    exp = Experiment("filesystem_watch", config=config, artifacts=True)
    exp.start()

    # Any files created in watched directories are automatically logged
    # with type detection based on filename and content

    Path("outputs").mkdir(exist_ok=True)
    Path("outputs/predictions.csv").write_text("id,label\n1,cat\n")
    exp.stop()
    with Experiment("reader") as reader:
        captured = {v.manifest.entries[0].path for v in reader.list_artifacts() if v.run_id == exp.run_id}
    assert captured == {"predictions.csv"}


def test_pytorch_saves_are_captured_with_automagic_artifacts(workdir: Path) -> None:
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    epoch, loss = 3, torch.tensor(0.5)

    # Enable auto-detection
    exp = Experiment("pytorch_training", artifacts=True, automagic_artifacts=True)
    exp.start()

    # Your normal PyTorch code - saves captured automatically
    torch.save(model.state_dict(), "model.pth")  # Automatically logged
    torch.save({
        'epoch': epoch,
        'model_state_dict': model.state_dict(),
        'optimizer_state_dict': optimizer.state_dict(),
        'loss': loss,
    }, "checkpoint.pth")  # Automatically logged as checkpoint

    exp.stop()

    with Experiment("reader") as reader:
        kinds = {v.name: v.artifact_type for v in reader.list_artifacts() if v.run_id == exp.run_id}
    assert ArtifactType.CHECKPOINT in kinds.values() and ArtifactType.WEIGHTS in kinds.values()


def test_listing_artifacts_by_type_and_by_backend(exp: Experiment) -> None:
    # List all artifacts
    artifacts = exp.list_artifacts()

    # Filter by type
    model_artifacts = exp.list_artifacts(type_filter=ArtifactType.MODEL)

    # Filter by backend
    mlflow_artifacts = exp.list_artifacts(backend="mlflow")

    assert {"trained_classifier", "experiment_results"} <= {a.name for a in artifacts}
    assert {a.artifact_type for a in model_artifacts} == {ArtifactType.MODEL}
    assert "trained_classifier" in {a.name for a in mlflow_artifacts}  # as MLflow itself lists it


def test_getting_the_latest_a_named_version_and_a_backends_copy(exp: Experiment, pytorch_model: Any) -> None:
    release = exp.create_artifact("trained_classifier", ArtifactType.MODEL).add_file("config.yaml")
    release.add_model(pytorch_model, framework="pytorch")
    exp.log_artifact(release, version="1.2.0")  # set-up: a release the guide's call can ask for by name

    # Get latest version
    artifact = exp.get_artifact("trained_classifier")
    assert artifact.ref == "trained_classifier:v2"

    # Get specific version
    artifact = exp.get_artifact("trained_classifier", version="v1.2.0")
    assert (artifact.version, artifact.version_name) == (2, "1.2.0")

    # Get from specific backend
    artifact = exp.get_artifact("trained_classifier", backend="mlflow")
    assert artifact.name == "trained_classifier" and artifact.version == "v2"
    assert exp.get_artifact("trained_classifier", version="v1.2.0", backend="mlflow").version == "v2"


def test_experiment_configuration_layers_over_the_settings(workdir: Path) -> None:
    from tracelet_artifacts.core.experiment import ExperimentConfig

    config = ExperimentConfig(
        # Artifact settings
        enable_artifacts=True,
        automagic_artifacts=True,
        watch_filesystem=False,  # Resource intensive
        artifact_watch_dirs=["./checkpoints", "./outputs"]
    )

    exp = Experiment("configured_exp", config=config)
    assert exp.settings.automagic_artifacts and not exp.settings.watch_filesystem
    assert exp.settings.artifact_watch_dirs == [Path("checkpoints"), Path("outputs")]


def test_environment_variables_are_read(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # export TRACELET_ENABLE_ARTIFACTS=true ... as the guide's shell block sets them
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", "true")
    monkeypatch.setenv("TRACELET_AUTOMAGIC_ARTIFACTS", "true")
    monkeypatch.setenv("TRACELET_WATCH_FILESYSTEM", "false")
    monkeypatch.setenv("TRACELET_ARTIFACT_WATCH_DIRS", "./checkpoints,./outputs")
    from tracelet_artifacts.settings import TraceletSettings

    settings = TraceletSettings()
    assert settings.enable_artifacts and settings.automagic_artifacts and not settings.watch_filesystem
    assert settings.artifact_watch_dirs == [Path("checkpoints"), Path("outputs")]


def test_settings_configuration_is_explicit(workdir: Path) -> None:
    from tracelet_artifacts.settings import TraceletSettings

    settings = TraceletSettings(
        enable_artifacts=True,
        automagic_artifacts=True,
        watch_filesystem=False,
        artifact_watch_dirs=["./checkpoints", "./outputs"]
    )
    assert settings.automagic_artifacts and settings.artifact_watch_dirs == [Path("checkpoints"), Path("outputs")]


def test_custom_artifacts_keep_their_metadata(exp: Experiment) -> None:
    # Use CUSTOM type for specialized artifacts
    custom_artifact = exp.create_artifact(
        name="optimization_trace",
        artifact_type=ArtifactType.CUSTOM,
        description="Custom optimization algorithm trace"
    )

    # Add custom metadata
    custom_artifact.metadata.update({
        "algorithm": "custom_optimizer",
        "convergence_criteria": "gradient_norm < 1e-6",
        "custom_type": "optimization_trace"
    })

    custom_artifact.add_object({"steps": [1.0, 0.5, 0.1]}, "trace", "json")
    exp.log_artifact(custom_artifact)
    assert exp.get_artifact("optimization_trace").manifest.metadata["algorithm"] == "custom_optimizer"


def test_batch_operations_log_each_fold(exp: Experiment) -> None:
    # Create multiple related artifacts
    artifacts = []
    for fold in range(5):
        artifact = exp.create_artifact(
            name=f"cv_fold_{fold}",
            artifact_type=ArtifactType.MODEL
        )
        artifact.add_file(f"fold_{fold}_model.pth")
        artifacts.append(artifact)

    # Log all at once
    results = {}
    for artifact in artifacts:
        results.update(exp.log_artifact(artifact))

    assert sorted(results) == ["local", "mlflow"]  # one receipt per backend, as the guide's dict.update keeps
    assert [exp.get_artifact(f"cv_fold_{fold}").manifest.entries[0].path for fold in range(5)] == [
        f"fold_{fold}_model.pth" for fold in range(5)]


def test_cross_platform_paths_and_metadata(exp: Experiment) -> None:
    # Ensure artifacts work across all backends
    artifact = exp.create_artifact("universal_model", ArtifactType.MODEL)

    # Add files in platform-neutral paths
    artifact.add_file("model.pth", "model/weights.pth")  # MLflow style
    artifact.add_file("config.json", "config.json")     # W&B style

    # Add platform-specific metadata
    artifact.metadata.update({
        "mlflow_flavor": "pytorch",
        "wandb_type": "model",
        "clearml_framework": "pytorch"
    })

    exp.log_artifact(artifact)
    record = exp.get_artifact("universal_model")
    assert [e.path for e in record.manifest.entries] == ["config.json", "model/weights.pth"]
    assert record.manifest.metadata["wandb_type"] == "model"


def test_large_data_goes_as_a_reference_next_to_small_previews(exp: Experiment) -> None:
    # For files >100MB, use references instead of uploads
    large_artifact = exp.create_artifact("large_dataset", ArtifactType.DATASET)

    # Upload small metadata files
    large_artifact.add_file("dataset_info.json")
    large_artifact.add_file("sample.png")  # Preview

    # Reference large data externally
    large_artifact.add_reference(
        uri="s3://my-bucket/full-dataset.tar.gz",
        size_bytes=10_000_000_000,  # 10GB
        description="Complete training dataset"
    )

    exp.log_artifact(large_artifact)
    record = exp.get_artifact("large_dataset")
    assert [e.path for e in record.manifest.entries] == ["dataset_info.json", "sample.png"]
    assert record.manifest.references[0].size_bytes == 10_000_000_000


def test_files_are_streamed_and_file_references_recorded(exp: Experiment, workdir: Path) -> None:
    # Avoid loading large objects into memory
    artifact = exp.create_artifact("efficient_logging", ArtifactType.REPORT)

    # Stream large files instead of loading
    with open("large_report.html", "rb") as f:  # noqa: F841 - the guide's line
        artifact.add_file("large_report.html")  # File streamed, not loaded

    # Use references for very large objects
    artifact.add_reference("file:///path/to/large/file.bin")

    exp.log_artifact(artifact)
    record = exp.get_artifact("efficient_logging")
    assert record.manifest.entry("large_report.html").size == len(GUIDE_FILES["large_report.html"])
    assert record.manifest.references[0].uri == "file:///path/to/large/file.bin"


def test_troubleshooting_artifacts_not_being_logged(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Check if artifacts are enabled
    exp = Experiment("test", artifacts=True)  # Must enable artifacts
    exp.start()

    # Check backend support
    print(exp._artifact_manager.get_stats())  # Debug info

    shown = capsys.readouterr().out
    stats = exp._artifact_manager.get_stats()
    exp.stop()
    assert stats["enabled"] is True and stats["backends"]["local"] == {
        "logged": 0, "pending": 0, "failed": 0, "last_error": None}
    assert "'outbox_depth'" in shown and "'large_file_threshold_mb': 100.0" in shown


def test_troubleshooting_automagic_detection(exp: Experiment) -> None:
    # Enable debug logging
    import logging
    logging.getLogger("tracelet_artifacts.automagic").setLevel(logging.DEBUG)

    # Check framework availability
    available = exp._is_framework_available("pytorch_lightning")  # Returns bool

    assert available is True  # lightning is installed in the test environment
    assert logging.getLogger("tracelet_artifacts.automagic").getEffectiveLevel() == logging.DEBUG
    logging.getLogger("tracelet_artifacts.automagic").setLevel(logging.NOTSET)


def test_troubleshooting_memory_issues(exp: Experiment, workdir: Path) -> None:
    from tracelet_artifacts.core.experiment import ExperimentConfig

    artifact = exp.create_artifact("memory_case", ArtifactType.DATASET)
    size = 3_000_000_000

    # Use references for large files
    artifact.add_reference("s3://bucket/large-file.bin", size_bytes=size)

    # Or disable filesystem watching
    config = ExperimentConfig(watch_filesystem=False)

    assert artifact.references[0].size_bytes == size and config.watch_filesystem is False


def test_api_reference_names_the_item_types_of_files_objects_and_references(workdir: Path) -> None:
    from tracelet_artifacts import ArtifactFile, ArtifactObject, ArtifactReference, TraceletArtifact
    from tracelet_artifacts.artifact import ArtifactFile as FileFromModule

    artifact = TraceletArtifact("api_reference", ArtifactType.REPORT, "The API reference's constructor")
    artifact.add_file("report.html").add_object({"a": 1}, "summary", "json").add_reference("s3://b/k")
    assert FileFromModule is ArtifactFile
    assert isinstance(artifact.files[0], ArtifactFile) and artifact.files[0].artifact_path == "report.html"
    assert isinstance(artifact.objects[0], ArtifactObject) and artifact.objects[0].serializer == "json"
    assert isinstance(artifact.references[0], ArtifactReference) and artifact.references[0].uri == "s3://b/k"
    assert (artifact.name, artifact.type, artifact.description) == (
        "api_reference", ArtifactType.REPORT, "The API reference's constructor")
    assert artifact.size_bytes > 0 and artifact.to_dict()["name"] == "api_reference"
    assert isinstance(artifact.metadata, dict)
