"""Exact FCFS start times of a pool of identical slots with a deterministic hold time, vectorized.

The request-level replay needs, for every request routed to a VM option, when a slot takes it. With one
pooled FIFO queue, ``c`` slots and the same hold time ``h`` for every request, start times never decrease
in arrival order and the slots are taken in turn: request i starts at

    s_i = max(a_i, s_{i−c} + h)

(the slot it takes is the one request i − c took). Per residue class r = i mod c that is Lindley's
recursion, solved in closed form by a running maximum: s_k = k·h + max(f_r, max_{j≤k}(a_j − j·h)), with
f_r the class's first free time. So a whole stretch of constant slot count costs a few numpy calls.

The slot count changes at second boundaries (VMs booting, VMs stopping). At such a boundary the stretch
ends: requests that would start after it are carried into the next stretch, still in arrival order, and
the free times of the slots are carried too. When slots are added they are free at the boundary; when
slots are removed, running requests finish (a VM drains) and new requests start only once fewer than
``c`` are running, so the ``c`` latest free times are the slots' and the earlier ones drain. Every free
time then lies within one hold time of the boundary, which keeps the cyclic order exact.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np


def fcfs_starts(arrivals: np.ndarray, slots: np.ndarray, hold: float,
                cap: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start times of ``arrivals`` (sorted, seconds on the axis 0..T) with ``slots[s]`` slots in second s,
    and which arrivals were diverted.

    ``cap`` (per second, optional): an arrival that finds every slot busy and at least ``cap`` requests
    waiting is diverted (the overflow router); its start is NaN. After the axis the last second's slots
    keep serving; requests that no slot ever takes start at ``inf``.
    """
    arrivals = np.asarray(arrivals, float)
    slots = np.asarray(slots, float)
    starts = np.full(arrivals.size, math.inf)
    diverted = np.zeros(arrivals.size, dtype=bool)
    if arrivals.size == 0 or slots.size == 0:
        return starts, diverted
    T = len(slots)
    limit = np.full(T, math.inf) if cap is None else np.asarray(cap, float)
    change = np.flatnonzero((slots[1:] != slots[:-1]) | (limit[1:] != limit[:-1])) + 1
    first_seconds = np.concatenate([[0], change])
    free, draining = np.zeros(0), np.zeros(0)
    carried = np.zeros(0, dtype=np.int64)  # accepted requests not started when the last stretch ended
    decided = 0                            # arrivals before this index are accepted or diverted
    for k, begin in enumerate(first_seconds):
        end = first_seconds[k + 1] if k + 1 < len(first_seconds) else math.inf
        c = int(round(slots[begin]))
        free, draining = _resize(np.concatenate([free, draining]), c, float(begin))
        last = int(np.searchsorted(arrivals, end, side="left")) if end < math.inf else arrivals.size
        queue = np.concatenate([carried, np.arange(decided, last)])
        decided = last
        if c == 0:  # nothing starts: arrivals wait, or are diverted once ``cap`` are waiting
            room = max(0, math.floor(limit[begin] - 1 - carried.size) + 1) if limit[begin] < math.inf else queue.size
            fresh = queue[carried.size:]
            diverted[fresh[room:]] = True
            carried = np.concatenate([carried, fresh[:room]])
            continue
        if queue.size == 0:
            continue
        accepted, begun, keep = _stretch(arrivals, queue, carried.size, free, hold, float(begin), limit[begin])
        diverted[queue[~keep]] = True
        started = begun < end
        starts[accepted[started]] = begun[started]
        free = _advance(free, begun[started], hold)
        carried = accepted[~started]
    return starts, diverted


def _stretch(arrivals, queue, preaccepted, free, hold, begin, cap):
    """One stretch of constant slots and cap: (accepted indices, their starts, keep mask over ``queue``).

    Requests are scheduled in chunks by the closed form, assuming none is diverted; the first one that
    finds all slots busy and ``cap`` waiting is diverted and the schedule resumes after it. Each chunk is
    exact given the requests accepted before it, so the result is the sequential rule's.
    """
    keep = np.ones(queue.size, dtype=bool)
    starts = np.empty(queue.size)
    waiting = np.zeros(0)  # starts of accepted requests still to begin (for the queue length at an arrival)
    pos, size = 0, 256
    while pos < queue.size:
        idx = queue[pos:pos + size]
        a = arrivals[idx]
        free = np.sort(np.maximum(free, max(a[0], begin)))  # idle slots are free at the first arrival: spread ≤ hold
        s = _cyclic_starts(np.maximum(a, begin), free, hold)
        if math.isinf(cap):
            bad = np.zeros(idx.size, dtype=bool)
        else:
            local = np.arange(idx.size)
            ahead = waiting.size - np.searchsorted(waiting, a + 1e-9, side="right")
            ahead += local - np.minimum(np.searchsorted(s, a + 1e-9, side="right"), local)
            bad = (s > a + 1e-9) & (ahead + 1 > cap) & (pos + local >= preaccepted)  # s − a carries float noise
        take = int(np.argmax(bad)) if bad.any() else idx.size
        starts[pos:pos + take] = s[:take]
        free = _advance(free, s[:take], hold)
        waiting = np.concatenate([waiting, s[:take]])
        if take < idx.size:
            keep[pos + take] = False
            pos += take + 1
            if take < 32:  # diversions come thick: go request by request until the queue empties
                pos, free, waiting = _congested(arrivals, queue, pos, preaccepted, free, waiting, hold, begin, cap,
                                                starts, keep)
            size = 256
        else:
            pos += take
            size = min(4 * size, 1 << 20)
        nxt = arrivals[queue[pos]] if pos < queue.size else math.inf
        waiting = waiting[waiting > nxt + 1e-9]
    return queue[keep], starts[keep], keep


def _congested(arrivals, queue, pos, preaccepted, free, waiting, hold, begin, cap, starts, keep):
    """The sequential rule, one request at a time, from ``pos`` until a request finds the queue empty and a
    slot free (then the closed form takes over again). Fills ``starts`` / ``keep``; returns the new state."""
    slots = sorted(free.tolist())  # a heap of free times (a sorted list is one)
    ahead = deque(waiting.tolist())
    times = arrivals[queue].tolist() if queue.size < 4096 else None
    while pos < queue.size:
        a = times[pos] if times is not None else float(arrivals[queue[pos]])
        while ahead and ahead[0] <= a + 1e-9:
            ahead.popleft()
        start = max(a, begin, slots[0])
        if start > a + 1e-9 and pos >= preaccepted and len(ahead) + 1 > cap:
            keep[pos] = False
        else:
            heapq.heapreplace(slots, start + hold)
            starts[pos] = start
            if start > a + 1e-9:
                ahead.append(start)
            elif not ahead:
                pos += 1
                break
        pos += 1
    return pos, np.sort(np.array(slots)), np.array(ahead, dtype=float)


def _advance(free: np.ndarray, started: np.ndarray, hold: float) -> np.ndarray:
    """Free times after ``started`` (in order) took the earliest free slots in turn (sorted ascending)."""
    c = free.size
    if started.size >= c:
        return np.sort(started[started.size - c:] + hold)
    return np.sort(np.concatenate([free[started.size:], started + hold]))


def _resize(free: np.ndarray, c: int, now: float) -> tuple[np.ndarray, np.ndarray]:
    """The free times of ``c`` slots at ``now``, and those of removed slots still running (they count
    against the limit until they finish, and come back if slots are added while they run)."""
    free = np.sort(np.maximum(free, now))
    if c <= free.size:
        rest = free[:free.size - c]
        return free[free.size - c:], rest[rest > now]
    return np.concatenate([np.full(c - free.size, now), free]), np.zeros(0)


def _cyclic_starts(arrivals: np.ndarray, free: np.ndarray, hold: float) -> np.ndarray:
    c = free.size
    m = arrivals.size
    rounds = -(-m // c)
    grid = np.full(rounds * c, math.inf)
    grid[:m] = arrivals
    grid = grid.reshape(rounds, c)
    k = np.arange(rounds)[:, None] * hold
    running = np.maximum.accumulate(np.vstack([free[None, :], grid - k]), axis=0)[1:]
    return (running + k).ravel()[:m]
