"""Automatic producers: a Lightning callback, a Hugging Face Trainer callback, a ``torch.save`` patch and a
file-stability watcher. They only build artifacts and hand them to a ``CapturePort`` (an Experiment); none of
them talks to a backend or a store.

Every producer logs under ``tracelet_artifacts.automagic`` (the counterpart of Tracelet's ``tracelet.automagic``
logger): ``logging.getLogger("tracelet_artifacts.automagic").setLevel(logging.DEBUG)`` shows each decision.
"""

from __future__ import annotations

import logging

LOGGER = "tracelet_artifacts.automagic"


def capture_logger(module: str) -> logging.Logger:
    """The logger of a hook module: ``tracelet_artifacts.automagic.<its last name>``."""
    return logging.getLogger(f"{LOGGER}.{module.rsplit('.', 1)[-1]}")
