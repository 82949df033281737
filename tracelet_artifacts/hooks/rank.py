"""Which process of a distributed job this is, read the way Lightning reads it (RANK, LOCAL_RANK, SLURM_PROCID).

Producers capture on global rank 0 only, so a DDP job uploads each file once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

_RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "JSM_NAMESPACE_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK")


def global_rank(environ: Mapping[str, str] | None = None) -> int:
    """The global rank from the environment (0 when no launcher set one)."""
    env = os.environ if environ is None else environ
    for name in _RANK_VARIABLES:
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def is_rank_zero(environ: Mapping[str, str] | None = None) -> bool:
    """True in the process that should capture (global rank 0)."""
    return global_rank(environ) == 0
