"""Running the web view: checks where it may listen, then serves it with uvicorn until Ctrl-C."""

from __future__ import annotations

import logging
from typing import Any

from tracelet_artifacts.ui.security import check_bind

log = logging.getLogger(__name__)


def serve(store: Any, *, host: str = "127.0.0.1", port: int = 8700, token: str | None = None) -> None:
    """Serve ``store`` read-only at ``http://host:port/`` (blocks). Refuses a non-loopback host without a token."""
    check_bind(host, token)
    import uvicorn

    from tracelet_artifacts.ui.app import create_app

    uvicorn.run(create_app(store, token=token), host=host, port=port, log_level="warning", access_log=False,
                server_header=False)
