"""The vectorized FCFS engine against the request-by-request queue it replaces, to the microsecond."""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np
import pytest

from hetplan.planner.optimize.fcfs import fcfs_starts


def _vm_queue(arrivals: np.ndarray, slots: np.ndarray, hold: float, cap: np.ndarray | None):
    """The sequential reference (the replay's engine before fcfs.py): one pooled FIFO queue, ``slots[s]`` parallel slots in second s, each request holding a slot ``hold`` s.

    Returns [(arrival, start)] and the diverted arrival times (all slots busy and the queue ahead holds
    at least ``cap[s]`` requests). After the trace the last second's slots keep serving.
    """
    T = len(slots)
    slots = slots.tolist()
    busy: list[float] = []
    waiting: deque = deque()
    done, diverted = [], []
    arr = arrivals.tolist()
    i, n = 0, len(arr)

    def start_waiting(now: float, limit: float) -> None:
        while waiting and len(busy) < limit:
            done.append((waiting.popleft(), now))
            heapq.heappush(busy, now + hold)

    for s in range(T + 1):
        limit, end = (slots[s], s + 1.0) if s < T else (slots[-1], math.inf)
        if s == T and limit <= 0:
            done.extend((a, math.inf) for a in waiting)
            break
        start_waiting(float(s), limit)
        while True:
            next_arrival = arr[i] if i < n and arr[i] < end else math.inf
            next_free = busy[0] if busy and busy[0] < end else math.inf
            if next_arrival == math.inf and (next_free == math.inf or not waiting):
                break
            if next_free <= next_arrival:
                start_waiting(heapq.heappop(busy), limit)
                continue
            i += 1
            if cap is not None and len(busy) >= limit and len(waiting) + 1 > cap[min(s, T - 1)]:
                diverted.append(next_arrival)
            elif not waiting and len(busy) < limit:
                done.append((next_arrival, next_arrival))
                heapq.heappush(busy, next_arrival + hold)
            else:
                waiting.append(next_arrival)
    return done, diverted


def reference(arrivals, slots, hold, cap):
    done, diverted = _vm_queue(arrivals, slots, hold, cap)
    by_arrival = dict(zip(np.round([a for a, _ in done], 12), [s for _, s in done]))
    starts = np.array([by_arrival.get(round(a, 12), np.nan) for a in arrivals])
    return starts, np.isin(np.round(arrivals, 12), np.round(diverted, 12))


@pytest.mark.parametrize("seed", range(12))
def test_starts_and_diversions_match_the_sequential_queue(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        T = int(rng.integers(1, 40))
        slots = rng.choice([0, 1, 2, 3, 5], size=T).astype(float)
        if rng.random() < 0.3:
            slots[:] = rng.integers(1, 4)
        arrivals = np.sort(rng.random(int(rng.integers(0, 400))) * T)
        hold = float(rng.choice([0.0473, 0.31, 1.07, 2.53]))  # holds longer than a second drain across changes
        kind = rng.random()
        if kind < 0.2:
            cap = None
        elif kind < 0.7:  # as the replay sets it: in proportion to the slots
            cap = slots * float(rng.choice([0.3, 1.0, 2.7, 6.0]))
        else:  # any cap, changing on its own (a queue allowed where no slot is up yet, one that shrinks while full)
            cap = rng.choice([0.0, 0.5, 1.0, 2.0, 4.0, 9.0], size=T)
        want, want_away = reference(arrivals, slots, hold, cap)
        got, away = fcfs_starts(arrivals, slots, hold, cap)
        assert np.array_equal(away, want_away)
        kept = ~away
        assert np.array_equal(np.isinf(got[kept]), np.isinf(want[kept]))
        finite = kept & np.isfinite(want)
        assert np.allclose(got[finite], want[finite], atol=1e-9, rtol=0)


def test_hand_computed_pool():
    """Two slots, hold 0.5 s: arrivals at 0, 0.1, 0.2, 0.3 start at 0, 0.1, 0.5, 0.6; with a queue cap of one
    waiting request, the arrival at 0.3 (one already waiting, both slots busy) is diverted."""
    arrivals = np.array([0.0, 0.1, 0.2, 0.3])
    starts, away = fcfs_starts(arrivals, np.array([2.0]), 0.5)
    assert np.allclose(starts, [0.0, 0.1, 0.5, 0.6]) and not away.any()
    starts, away = fcfs_starts(arrivals, np.array([2.0]), 0.5, cap=np.array([1.0]))
    assert away.tolist() == [False, False, False, True]
    assert np.allclose(starts[:3], [0.0, 0.1, 0.5])


def test_a_removed_vm_drains_before_new_requests_start():
    """Three slots, then one: new requests wait until fewer than one is running."""
    arrivals = np.array([0.1, 0.2, 0.3, 1.05])
    starts, _ = fcfs_starts(arrivals, np.array([3.0, 1.0, 1.0]), 1.5)
    assert np.allclose(starts, [0.1, 0.2, 0.3, 1.8])  # the last slot frees at 1.8 (0.3 + 1.5)
