"""Tracelet's module paths (``tracelet.core.artifacts``, ``tracelet.core.experiment``), so its documented
imports run with only the package name changed. New code imports from ``tracelet_artifacts``."""
