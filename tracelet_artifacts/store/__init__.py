"""The embedded store: content-addressed blobs, the SQLite catalog, and the service layer over them."""
