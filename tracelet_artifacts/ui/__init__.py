"""The web view of the store (``tracelet-artifacts ui``): server-rendered pages over the catalog and blobs,
read-only, with every asset served by this package.

    from tracelet_artifacts.ui.app import create_app
    app = create_app(EmbeddedStore(".tracelet"))     # any ASGI server; `tracelet-artifacts ui` uses uvicorn
"""
