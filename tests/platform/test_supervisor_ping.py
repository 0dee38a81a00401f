"""The supervisor's health check (platform/serving.answers) against a real child process:
a worker that dies while it is being pinged is seen when it dies, not when the check's
timeout runs out (uvicorn's own ping waits the whole timeout: the supervisor holds both
ends of the pipe, so no end of file tells it), and it is logged by how it ended
(platform/serving.health), even in the moment when its pipes are closed and the kernel has
not yet let it be reaped."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from types import SimpleNamespace

from ecommerce.platform.serving import answers, health


def _never_answers(conn) -> None:  # noqa: ANN001 - a pipe end
    time.sleep(120)


def _answers(conn) -> None:  # noqa: ANN001 - a pipe end
    while True:
        conn.recv()
        conn.send(True)


def _worker(target):  # noqa: ANN001, ANN202
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(child,), daemon=True)
    process.start()
    return SimpleNamespace(parent_conn=parent, process=process)


def test_a_worker_killed_during_the_check_is_seen_when_it_dies():
    worker = _worker(_never_answers)
    killer = threading.Timer(1.0, os.kill, (worker.process.pid, signal.SIGKILL))
    killer.start()
    started = time.monotonic()
    try:
        assert answers(worker, 60) is False
        assert time.monotonic() - started < 30  # the 60 s bound never ran out
        worker.process.join(10)
        assert worker.process.exitcode == -signal.SIGKILL
    finally:
        killer.cancel()
        if worker.process.is_alive():
            worker.process.kill()


def test_a_worker_that_answers_is_alive_and_healthy():
    worker = _worker(_answers)
    try:
        assert answers(worker, 60) is True
        assert health(worker, 60) is None
    finally:
        worker.process.kill()
        worker.process.join(10)


class _NotYetReaped:
    """A killed process as the supervisor sees it in the moment after its pipes closed and
    before the kernel lets it be reaped: `is_alive()` still True."""

    def __init__(self, process):  # noqa: ANN001 - multiprocessing's Process
        self._process = process
        self.sentinel = process.sentinel

    def is_alive(self) -> bool:
        return True

    def join(self, timeout=None) -> None:  # noqa: ANN001
        self._process.join(timeout)

    @property
    def exitcode(self):  # noqa: ANN201
        return self._process.exitcode


def test_a_worker_killed_is_reported_by_how_it_ended_even_before_it_is_reaped():
    worker = _worker(_never_answers)
    os.kill(worker.process.pid, signal.SIGKILL)
    seen = SimpleNamespace(parent_conn=worker.parent_conn,
                           process=_NotYetReaped(worker.process))
    try:
        assert health(seen, 60) == "killed by SIGKILL"
    finally:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(10)


def test_a_worker_that_does_not_answer_is_said_so():
    worker = _worker(_never_answers)
    try:
        assert health(worker, 0.5) == "did not answer the health check within 0.5 s; killed"
    finally:
        worker.process.kill()
        worker.process.join(10)

