"""Moved: repairing stored versions from backends' copies is ``tracelet_artifacts.repair`` (one floor up, beside
delivery, so the store package never imports an adapter). These names stay importable from here."""

from tracelet_artifacts.repair import (
    QUARANTINE,
    BackendCopies,
    BlobProblem,
    BlobState,
    RepairReport,
    check_version,
    fetch_verified,
    repair_version,
    unrepaired_message,
)

__all__ = ["QUARANTINE", "BackendCopies", "BlobProblem", "BlobState", "RepairReport", "check_version",
           "fetch_verified", "repair_version", "unrepaired_message"]
