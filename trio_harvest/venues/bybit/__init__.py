"""Bybit v5 public market data, categories ``linear`` and ``spot`` (reference/venues.md, section 4):
``facts`` (constants), ``wire`` (decode), ``book`` (the ``u`` chain), ``control`` (subscribe,
ping, replies), ``resubscribe`` (the per-topic limiter), ``backfill`` (recent-trade and the
``unfillable`` decision), ``listing`` (instruments-info with its cursor), ``adapter`` (the
``Venue``). Pure: no trio, no I/O."""
