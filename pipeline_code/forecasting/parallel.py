"""Map a per-series function over many series in worker processes (stdlib only).

A process pool needs POSIX semaphores (shared memory under /dev/shm). AWS Lambda has none
(https://aws.amazon.com/blogs/compute/parallel-processing-in-python-with-aws-lambda/), so where
they cannot be made the series go to forked workers over pipes instead, which Lambda allows: the
same results in the same order, on every core either way.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def resolve_workers(workers: int) -> int:
    """0 or less means every core the process may use."""
    if workers > 0:
        return workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def map_series(
    function: Callable[[In], Out],
    items: Sequence[In],
    workers: int = 0,
    on_done: Callable[[int], None] | None = None,
) -> list[Out]:
    """`[function(item) for item in items]`, in order, spread over `workers` processes;
    `on_done(1)` after each result arrives (progress).

    One worker (or a handful of items) runs in this process: no start-up cost, easy debugging.
    Items go to workers in chunks, so the per-task overhead is paid a few dozen times, not once
    per series. `function` must be picklable (a module-level function or a functools.partial).
    """
    report = on_done or (lambda count: None)
    workers = min(resolve_workers(workers), max(1, len(items)))
    if workers == 1:
        return [_reported(function(item), report) for item in items]
    chunksize = max(1, len(items) // (workers * 8))
    if not semaphores_work():
        return _map_over_pipes(function, items, workers, chunksize, report)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results: Iterable[Out] = pool.map(function, items, chunksize=chunksize)
        return [_reported(result, report) for result in results]


def semaphores_work() -> bool:
    """Whether this system can make the semaphores a process pool needs."""
    try:
        multiprocessing.get_context().Lock()
    except OSError:  # ENOSYS / EACCES where /dev/shm is missing, as on AWS Lambda
        return False
    return True


def _map_over_pipes(
    function: Callable[[In], Out],
    items: Sequence[In],
    workers: int,
    chunksize: int,
    report: Callable[[int], None],
) -> list[Out]:
    """`map_series` with forked workers fed chunks over pipes: no semaphore, no shared memory."""
    chunks = [
        range(start, min(start + chunksize, len(items)))
        for start in range(0, len(items), chunksize)
    ]
    pending: Iterator[int] = iter(range(len(chunks)))
    results: list[Any] = [None] * len(items)
    context = multiprocessing.get_context("fork")
    connections: dict[Connection, Any] = {}
    for _ in range(min(workers, len(chunks))):
        ours, theirs = context.Pipe()
        process = context.Process(target=_pipe_worker, args=(function, theirs), daemon=True)
        process.start()
        theirs.close()
        connections[ours] = process
    try:
        for connection in connections:
            _send_next(connection, pending, chunks, items)
        busy = set(connections)
        while busy:
            for connection in wait(list(busy)):
                index, outcome = connection.recv()
                if isinstance(outcome, BaseException):
                    raise outcome
                for position, result in zip(chunks[index], outcome, strict=True):
                    results[position] = result
                    report(1)
                if not _send_next(connection, pending, chunks, items):
                    busy.discard(connection)
        return results
    finally:
        for connection, process in connections.items():
            connection.close()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


def _send_next(
    connection: Connection, pending: Iterator[int], chunks: list[range], items: Sequence[Any]
) -> bool:
    """Give the worker its next chunk, or tell it to stop; False when none was left."""
    index = next(pending, None)
    if index is None:
        connection.send(None)
        return False
    connection.send((index, [items[position] for position in chunks[index]]))
    return True


def _pipe_worker(function: Callable[[Any], Any], connection: Connection) -> None:
    while (task := connection.recv()) is not None:
        index, chunk = task
        try:
            connection.send((index, [function(item) for item in chunk]))
        except Exception as err:  # the parent raises it, as a pool would
            connection.send((index, err))


def _reported(result: Out, report: Callable[[int], None]) -> Out:
    report(1)
    return result
