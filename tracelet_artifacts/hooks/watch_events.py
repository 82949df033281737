"""The watcher's event intake: what the observers report (created, modified, closed, moved, deleted) becomes
bookkeeping on the per-file state machine; observer threads never do I/O here.
"""

from __future__ import annotations

import os
import time
from typing import Any

from watchdog import events as fs_events

from tracelet_artifacts.hooks import capture_logger
from tracelet_artifacts.hooks.watch_stability import CAPTURING, CLOSED, QUIET, WRITING, WatcherCore

log = capture_logger(__name__)

# watchdog >= 7 reports attribute changes apart from writes; older versions call both "modified"
ATTRIB_EVENT: type[Any] | None = getattr(fs_events, "FileAttribEvent", None)


class EventIntake(WatcherCore):
    """Turns observer events into phases of the files they name (the watcher's first part)."""

    def _on_event(self, event: Any) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        with self._lock:
            if not self._running:
                return
            if event.is_directory:
                if kind == "deleted" or (kind == "moved" and src and not dest):  # gone from the folders
                    for path in [p for p in self._states if p.startswith(src + os.sep)]:
                        del self._states[path]
                arrived = src if kind == "created" else dest if kind == "moved" else ""
                if arrived:
                    self._push(time.monotonic(), arrived, -1)  # scan it: its files may predate its watch
                return
            if kind == "moved":
                self._on_moved(src, dest)
                return
            if self._excluded_path(src) or (root := self._root_of(src)) is None:
                return
            state = self._states.get(src)
            if kind == "deleted":
                self._states.pop(src, None)
                self._known.pop(src, None)
                self._digests.pop(src, None)
            elif kind == "closed":
                self._set_phase(src, CLOSED, "closed")
            elif kind == "modified":
                self._set_phase(src, WRITING if root.closes else QUIET, "closed" if root.closes else "settled")
            elif kind == "created":
                if state is None or state.phase != WRITING:
                    self._set_phase(src, QUIET, "settled")
            elif kind == "attrib" and state is not None and state.phase not in (WRITING, CAPTURING):
                self._set_phase(src, state.phase, state.reason)  # e.g. copystat after a copy: stat again

    def _on_moved(self, src: str, dest: str) -> None:
        state = self._states.pop(src, None)
        self._known.pop(src, None)
        self._digests.pop(src, None)
        if not dest or self._excluded_path(dest) or (root := self._root_of(dest)) is None:
            return
        if state is not None and state.phase == WRITING:
            self._set_phase(dest, WRITING, "closed")  # renamed while still open: its close will come
        elif root.closes:
            self._set_phase(dest, CLOSED, "moved")     # the atomic-write pattern: complete on arrival
        else:
            self._set_phase(dest, QUIET, "settled")


def event_filter() -> list[type[Any]]:
    """The event kinds the observers deliver (our own reads never come back as events)."""
    wanted: list[type[Any]] = [
        fs_events.FileCreatedEvent, fs_events.FileModifiedEvent, fs_events.FileMovedEvent,
        fs_events.FileDeletedEvent, fs_events.FileClosedEvent, fs_events.DirCreatedEvent,
        fs_events.DirMovedEvent, fs_events.DirDeletedEvent,
    ]
    return wanted + ([ATTRIB_EVENT] if ATTRIB_EVENT is not None else [])


class EventSink(fs_events.FileSystemEventHandler):
    """What the observers call: forwards each event to the watcher's bookkeeping (never blocks on I/O)."""

    def __init__(self, watcher: EventIntake) -> None:
        self.watcher = watcher

    def dispatch(self, event: fs_events.FileSystemEvent) -> None:
        try:
            self.watcher._on_event(event)
        except Exception:
            log.exception("File watcher: handling %r failed", event)
