"""Values producers put into metadata and config artifacts: finite numbers, and JSON-able copies of
hyper-parameters and training arguments (containers kept, tensors as lists, anything else as its repr).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any


def number(value: Any) -> float | None:
    """``value`` (a number or a one-element tensor) as a finite float, else None."""
    try:
        result = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy of hyper-parameters: containers kept, tensors as lists, anything else as repr."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > 8:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):
        return json_safe(value.tolist(), depth + 1)
    return repr(value)
