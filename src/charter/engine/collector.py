"""Keeping Python's cyclic garbage collector away from the engine's tables.

The engine holds rows by the million in tuples, dicts and sets. The collector's full passes
walk every tracked object alive: 50-250 ms each at a million rows, at moments no caller
chooses, which is what a single change's worst-case latency would be made of.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while bulk work runs (a large batch, a load,
    building a large index).

    A batch allocates objects by the ten thousand, so the collector would run its young
    passes hundreds of times and, every hundred of them, a full pass over every object
    alive: with a million rows held in dicts, lists and sets, 50-100 ms each.

    Afterwards the batch's own garbage is collected by young passes (they walk what the
    batch made, not what was there before), and what survives, rows and indexes that live
    as long as their tables, is moved out of the collector's sight (``gc.freeze``): full
    passes later walk only what changed since, so a single change after a large load is
    never held up by a pass over the million rows. (Frozen objects are still freed by
    reference counting; tables hold no reference cycles.)
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.collect(1)
        gc.freeze()
        gc.enable()
