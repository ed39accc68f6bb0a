"""OKX v5 (``okx-swap``, ``okx-spot``): ``wire.py`` (frames and control messages), ``book.py``
(the ``seqId`` book rule and checksum), ``rest.py`` (listing, backfill, snapshots) and
``adapter.py`` (the ``Venue``). Pure."""
