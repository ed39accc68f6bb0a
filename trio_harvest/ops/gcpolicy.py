"""The garbage-collection policy of a harvester process: fewer, cheaper cycle collections.

Owns the process-wide ``gc`` settings while a harvester runs. Most objects of the hot path die
by reference counting; the cycle collector only adds cost. With CPython's defaults (700, 10, 10)
a whole-market run at 10k msg/s spent about 12 % of its CPU in the collector, most of it in full
(generation 2) collections of 0.1–0.2 s each, which also stall the event loop. Here the
generations are collected less often, and what start-up built (modules, config, engines) is
frozen out of every later collection. Cyclic garbage is still collected, only later.

Must never be applied by library code or tests as a side effect: only the ``run`` command wraps
the harvester in ``tuned()``, and leaving it restores what was there before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young objects collected every 20,000 net allocations (not 700); a middle collection every
# 20 young ones; a full collection after 50 middle ones (and CPython's own rule: only when the
# objects that survived since the last one are at least 25 % of the old generation).
THRESHOLDS = (20_000, 20, 50)


@contextmanager
def tuned(thresholds: tuple[int, int, int] = THRESHOLDS) -> Iterator[None]:
    """Within: the collector runs at ``thresholds`` and start-up's objects are frozen (left out
    of every collection). Afterwards the previous thresholds come back and the frozen objects
    are collectable again."""
    before = gc.get_threshold()
    gc.collect()  # start-up's garbage goes now, not into the frozen set
    gc.freeze()
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
