"""Pre-serialised base records for medium and large worlds, built by worker processes after start-up.

Generating a 5000-record page of the `large` world on demand takes 0.1-0.4 s of pure Python; the
export hot path should take milliseconds. Base records never change (advances go to the overlay), so
their bytes can be computed once, off the request path, in other processes (the GIL would otherwise
make a warm-up thread slow every request). The server answers immediately; pages whose chunk is not
warm yet are generated inline as before.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import multiprocessing
import os
import threading
from typing import Any

import orjson

from stsync.sandbox.world import BIG, World

CHUNK = 5000
_worker_world: World | None = None


def _gen_chunk(seed: int, scale: str, res: str, c: int) -> dict[tuple[str, int], list[bytes]]:
    """Bytes of chunk `c` of `res`; an invoice chunk also yields the two invoice-item chunks it embeds,
    so those items are generated once instead of twice."""
    global _worker_world  # noqa: PLW0603 - one World per worker process, built on first use
    if _worker_world is None or _worker_world.seed != seed or _worker_world.scale != scale:
        _worker_world = World(seed, scale)
    w = _worker_world
    lo, hi = c * CHUNK, min(w.n[res], (c + 1) * CHUNK)
    if res != "invoices":
        return {(res, c): [orjson.dumps(w.base_record(res, i)) for i in range(lo, hi)]}
    items = [w.base_record("invoice_items", k) for k in range(2 * lo, 2 * hi)]
    out = {
        ("invoices", c): [
            orjson.dumps(w.base_invoice(i, items[2 * (i - lo) : 2 * (i - lo) + 2])) for i in range(lo, hi)
        ]
    }
    raw = [orjson.dumps(it) for it in items]
    # items 2*lo .. 2*hi-1 are exactly item chunks 2c and 2c+1 (there are two items per invoice)
    for j, start in enumerate(range(0, len(raw), CHUNK)):
        out[("invoice_items", 2 * c + j)] = raw[start : start + CHUNK]
    return out


class PrewarmCache:
    """(resource, chunk) -> list of record bytes, filled in the background in export-feed order."""

    def __init__(self, seed: int, scale: str, world: World, workers: int | None = None) -> None:
        self.seed, self.scale = seed, scale
        self._n = {r: world.n[r] for r in BIG}
        self._chunks: dict[tuple[str, int], list[bytes]] = {}
        self._workers = workers or max(1, min(2, os.cpu_count() or 1))
        self._pool: cf.ProcessPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._want: collections.deque[tuple[str, int]] = collections.deque()
        self._want_lock = threading.Lock()
        self._submitted: set[tuple[str, int]] = set()
        self._missed: set[tuple[str, int]] = set()
        self.total_chunks = sum(-(-n // CHUNK) for n in self._n.values())

    def get(self, res: str, i: int) -> bytes | None:
        chunk = self._chunks.get((res, i // CHUNK))
        if chunk is None:
            # A client is reading this feed now: warm what it will ask for next before the rest.
            c = i // CHUNK
            if (res, c) not in self._missed:
                with self._want_lock:
                    self._missed.add((res, c))
                    self._want.extend((res, c + k) for k in (1, 2))
            return None
        return chunk[i % CHUNK]

    def progress(self) -> dict[str, Any]:
        return {
            "chunks_ready": len(self._chunks),
            "chunks_total": self.total_chunks,
            "done": len(self._chunks) >= self.total_chunks,
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stsync-sandbox-prewarm", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        # Round-robin over resources so the first pages of every feed are warm early.
        order: list[tuple[str, int]] = []
        longest = max(-(-n // CHUNK) for n in self._n.values())
        for c in range(longest):
            # invoice-item chunks come with invoice chunks (see _gen_chunk)
            order += [(r, c) for r in BIG if c * CHUNK < self._n[r] and r != "invoice_items"]
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded server
        self._pool = cf.ProcessPoolExecutor(max_workers=self._workers, mp_context=ctx)
        try:
            pending: dict[cf.Future[dict[tuple[str, int], list[bytes]]], tuple[str, int]] = {}
            it = iter(order)
            # One queued task per worker, so a chunk a client is waiting for starts within one chunk time.
            for _ in range(self._workers):
                self._submit(it, pending)
            while pending and not self._stop.is_set():
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    pending.pop(fut)
                    if not fut.cancelled() and fut.exception() is None:
                        self._chunks.update(fut.result())
                    self._submit(it, pending)
        except (RuntimeError, OSError, cf.BrokenExecutor):
            return  # interpreter shutting down or workers killed: inline generation still works
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _next_wanted(self) -> tuple[str, int] | None:
        with self._want_lock:
            while self._want:
                res, c = self._want.popleft()
                if res == "invoice_items":
                    res, c = "invoices", c // 2  # item chunks are built with their invoices
                key = (res, c)
                if res in self._n and c * CHUNK < self._n[res] and key not in self._submitted:
                    return key
        return None

    def _submit(self, it: Any, pending: dict[cf.Future[dict[tuple[str, int], list[bytes]]], tuple[str, int]]) -> None:
        if self._stop.is_set() or self._pool is None:
            return
        nxt = self._next_wanted()
        while nxt is None:
            nxt = next(it, None)
            if nxt is None:
                return
            if nxt in self._submitted or nxt in self._chunks:
                nxt = None
        res, c = nxt
        self._submitted.add(nxt)
        pending[self._pool.submit(_gen_chunk, self.seed, self.scale, res, c)] = nxt
