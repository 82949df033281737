"""Which ML frameworks are installed here, asked without importing them (importing torch takes seconds).

    >>> framework_available("pytorch_lightning")   # doctest: +SKIP
    True
"""

from __future__ import annotations

import importlib.util

from tracelet_artifacts.errors import ConfigurationError

__all__ = ["FRAMEWORK_MODULES", "framework_available"]

# A framework name (as Tracelet and add_model spell it) → the top-level modules any one of which provides it.
# Lightning capture works with either ``lightning`` (lightning.pytorch) or ``pytorch_lightning``.
FRAMEWORK_MODULES: dict[str, tuple[str, ...]] = {
    "pytorch": ("torch",),
    "torch": ("torch",),
    "pytorch_lightning": ("lightning", "pytorch_lightning"),
    "lightning": ("lightning", "pytorch_lightning"),
    "sklearn": ("sklearn",),
    "scikit-learn": ("sklearn",),
    "transformers": ("transformers",),
    "tensorflow": ("tensorflow",),
    "keras": ("keras",),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
}


def framework_available(name: str) -> bool:
    """Whether framework ``name`` can be imported here (``pytorch``, ``pytorch_lightning``, ``sklearn``,
    ``transformers``, …), found without importing it. An unknown name raises ConfigurationError listing
    the known ones (a misspelt name never answers a silent False)."""
    modules = FRAMEWORK_MODULES.get(str(name).strip().lower())
    if modules is None:
        raise ConfigurationError(f"Unknown framework {name!r}; known: {', '.join(FRAMEWORK_MODULES)}.")
    for module in modules:
        try:
            if importlib.util.find_spec(module) is not None:
                return True
        except (ImportError, ValueError):  # a broken install or a module without a spec counts as missing
            continue
    return False
