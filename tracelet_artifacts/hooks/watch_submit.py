"""The watcher's submission: snapshot a complete file (copied and hashed in one pass into the store folder),
check it did not change meanwhile, and hand it to the experiment's ``CapturePort``; a file that belongs to a
multi-file folder (a DCP checkpoint, a Hugging Face model) waits until the folder is complete, which is
then handed over as one version. Also the final sweep at stop.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tracelet_artifacts import detect, digest
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.hooks import bundles, capture_logger
from tracelet_artifacts.hooks.filecheck import Signature, file_signature, format_problem
from tracelet_artifacts.hooks.naming import artifact_name_for
from tracelet_artifacts.hooks.staging import claimed_by, remove, stage
from tracelet_artifacts.hooks.watch_stability import (
    CLOSE_CHECK_S,
    CLOSED,
    INVALID,
    QUIET,
    CapturedFile,
    WatcherCore,
)

log = capture_logger(__name__)


class Submission(WatcherCore):
    """Snapshots and hands over complete files and folders (the watcher's third part)."""

    def _queue_capture(self, path: str, signature: Signature, generation: int, reason: str) -> None:
        assert self._capturer is not None
        with self._lock:
            future = self._capturer.submit(self._capture, path, signature, generation, reason)
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("File watcher: capturing a file failed", exc_info=future.exception())

    def _capture(self, path: str, signature: Signature, generation: int, reason: str) -> CapturedFile | None:
        """Snapshot the file (copied and hashed into the store folder, or hashed in place), verify it did
        not change meanwhile, and hand it over; a file that changed goes back to waiting. A file another
        producer (the Lightning callback, the torch.save capture) already captured is left to it, and a file
        of a multi-file folder is taken with its folder, once that is complete."""
        owner = claimed_by(signature)
        if owner is not None:
            log.debug("File watcher: %s was captured by the %s producer; not catalogued again", path, owner)
            self._done_with(path, signature, generation)
            return None
        root = self._root_of(path)
        bundle = bundles.bundle_for(path, root.path if root is not None else None)
        if bundle is not None:
            self._done_with(path, signature, generation)
            return self._capture_folder(bundle, sweeping=generation < 0)
        try:
            if self._staging is not None:
                staged = stage(path, self._staging, producer=None, link=False)
                assert staged is not None and staged.sha256 is not None
                snapshot, sha, size = staged.path, staged.sha256, staged.path.stat().st_size
            else:
                snapshot, sha, size = None, digest.sha256_file(path), signature[0]
        except OSError as exc:
            log.info("File watcher: %s vanished or became unreadable before capture (%s)", path, exc)
            self._settle_again(path, generation)
            return None
        if file_signature(path) != signature or size != signature[0]:
            log.debug("File watcher: %s changed while being captured; waiting for it to settle again", path)
            self._unstage(snapshot)
            self._settle_again(path, generation)
            return None
        with self._lock:
            self._done_with(path, signature, generation)
            if self._digests.get(path) == sha:  # same content as last time (e.g. touched): nothing new
                self._unstage(snapshot)
                return None
            self._digests[path] = sha
        captured = CapturedFile(Path(path), artifact_name_for(path, Path(path).name),
                                detect.artifact_type_for(path), size, sha, signature[1], reason)
        self._hand_over(captured, snapshot)
        return captured

    def _done_with(self, path: str, signature: Signature, generation: int) -> None:
        """Forget the pending state of ``path`` (if this check still owns it) and remember it as seen."""
        with self._lock:
            state = self._states.get(path)
            if state is not None and state.generation == generation:
                del self._states[path]
            self._known[path] = signature

    def _capture_folder(self, bundle: bundles.Bundle, *, sweeping: bool) -> CapturedFile | None:
        """Hand over a multi-file folder as one version once it is complete and none of its files is
        still being written; until then each settled file just waits for the next one (or the marker).
        The final sweep has checked every file itself (``sweeping``)."""
        folder = bundle.folder
        with self._lock:
            busy = [] if sweeping else [p for p, s in self._states.items()
                                        if Path(p).parent == folder and s.phase != INVALID]
        if busy:
            log.debug("File watcher: %s still has files being written (%s)", folder, Path(busy[0]).name)
            return None
        problem = bundles.problem(folder, bundle.kind)
        if problem is not None:
            log.debug("File watcher: %s is not complete yet: %s", folder, problem)
            return None
        key = bundles.signature(folder)
        with self._lock:
            if self._known.get(str(folder)) == key:
                return None
            self._known[str(folder)] = key
        members = bundles.members(folder)
        if self._staging is not None:
            staged = stage(folder, self._staging, producer=None, files=members)
            assert staged is not None
            snapshot: Path | None = staged.path
        else:
            snapshot = None
        if bundles.signature(folder) != key:  # a file changed while it was linked: wait for the next round
            self._unstage(snapshot)
            with self._lock:
                self._known.pop(str(folder), None)
            return None
        size = sum(size for _, (size, *_rest) in key)
        sha = digest.sha256_bytes("\n".join(f"{rel} {sig}" for rel, sig in key).encode())
        captured = CapturedFile(folder, artifact_name_for(folder, folder.name), bundle.artifact_type, size, sha,
                                max(sig[1] for _, sig in key), "folder")
        self._hand_over(captured, snapshot)
        return captured

    def _settle_again(self, path: str, generation: int) -> None:
        with self._lock:
            state = self._states.get(path)
            if state is not None and state.generation == generation and self._running:
                self._set_phase(path, QUIET, "settled")
            elif state is not None and state.generation == generation:
                del self._states[path]

    @staticmethod
    def _unstage(staged: Path | None) -> None:
        if staged is not None:
            remove(staged)

    def _logged(self, future: Future[Any], staged: Path) -> None:
        self._unstage(staged)  # first: once nothing is submitted, nothing staged is left either
        with self._lock:
            self._submitted.discard(future)
            self._lock.notify_all()

    def _hand_over(self, captured: CapturedFile, staged: Path | None) -> None:
        with self._lock:
            self.captured.append(captured)
        log.info("File watcher: captured %s as %s (%s, %d bytes, %s)", captured.path, captured.name,
                 captured.artifact_type.value, captured.size, captured.reason)
        if self.experiment is not None and staged is not None:
            artifact = TraceletArtifact(
                captured.name, captured.artifact_type,
                description=f"Captured by the file watcher from {captured.path}",
                metadata={"source_path": str(captured.path), "captured_by": "watcher", "reason": captured.reason},
            )
            if staged.is_dir():
                artifact.add_dir(staged)
            else:
                artifact.add_file(staged, captured.path.name)
            try:
                future = self.experiment.submit_artifact(artifact)
            except Exception:
                self._unstage(staged)
                log.exception("File watcher: handing %s to the experiment failed", captured.path)
            else:
                with self._lock:
                    self._submitted.add(future)
                future.add_done_callback(lambda f: self._logged(f, staged))
        if self.callback is not None:
            try:
                self.callback(captured)
            except Exception:
                log.exception("File watcher: the callback failed for %s", captured.path)

    def _final_sweep(self) -> None:
        """Capture what changed since it was last seen complete, once it holds still (bounded wait)."""
        candidates: dict[str, str] = {}  # path -> reason
        with self._lock:
            for path, state in self._states.items():
                candidates[path] = state.reason if state.phase in (CLOSED, INVALID) else "sweep"
        for root in self.roots:
            if root.path.is_dir():
                for path in self._walk(root.path):
                    signature = file_signature(path)
                    if signature is not None and signature[0] > 0 and self._known.get(path) != signature:
                        candidates.setdefault(path, "sweep")
        todo = {p: r for p, r in candidates.items() if self._eligible(p)}
        seen: dict[str, tuple[Signature, float]] = {}
        deadline = time.monotonic() + self.settle_s + 1.0
        while todo:
            now = time.monotonic()
            for path in sorted(todo):
                signature = file_signature(path)
                if signature is None or signature[0] == 0 or self._known.get(path) == signature:
                    del todo[path]
                    continue
                last = seen.get(path)
                if last is None or last[0] != signature:
                    seen[path] = (signature, now)
                    continue
                closed = todo[path] in ("closed", "moved")
                quiet_for = max(now - last[1], time.time() - signature[1] / 1e9)
                if not closed and quiet_for < self.settle_s:
                    continue
                problem = format_problem(path, signature[0])
                if problem is not None:
                    log.warning("File watcher: not capturing %s at stop: it looks incomplete (%s).", path, problem)
                elif self._capture(path, signature, -1, todo[path]) is None and self._known.get(path) != signature:
                    log.warning("File watcher: not capturing %s at stop: it changed while being copied.", path)
                del todo[path]
            if not todo:
                break
            if time.monotonic() >= deadline:
                for path in todo:
                    log.warning("File watcher: not capturing %s at stop: it was still changing.", path)
                break
            time.sleep(CLOSE_CHECK_S)
