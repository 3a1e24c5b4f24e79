"""Reading ahead: the next page's request runs in a thread while the caller converts the last one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def prefetched(items: Iterable[T], depth: int = 2, name: str = "prefetch") -> Iterator[T]:
    """``items`` produced by a background thread up to ``depth`` ahead of the consumer.

    The server prepares the next page while this process parses and loads the previous one, so the two
    share the machine's cores instead of taking turns. An error in the producer is raised at the
    consumer, after the items produced before it; closing the consumer stops the producer.
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.put(exc)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)
