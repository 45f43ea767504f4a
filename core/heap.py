"""The heap of a long-lived serving process (`gsf api`, `gsf matchmaker`)."""

from __future__ import annotations

import gc

# Objects allocated between two young collections. Python's default (700) collects several times
# per request, promoting the request's live objects to the oldest generation, whose full
# collections then stop the process for tens to hundreds of milliseconds.
GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """For a process that serves an app (`gsf api`, `gsf matchmaker`), once, after `create_app`: the objects of
    startup (modules, the app and its routes, schemas, the ORM's mappers; some 200,000) live as long
    as the process, yet every full collection walked them all (150-500 ms each at 200 allocations/s
    on two cores: the p99 of allocation). Frozen, the collector skips them; request garbage is
    still collected. Not for a process that merely hosts apps (tests): it changes when that
    process's other garbage is collected."""
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
