"""The embedded store: content-addressed blobs (``blobs.py``, ``s3.py``), the catalog database shared by the
catalog, the outbox and the stat cache (``catalog.py``, ``outbox.py``, ``stat_cache.py`` over ``sql.py``),
the two write steps (``ingest.py``, ``embedded.py``) and the service layer over them (``service.py``)."""
