"""The supervisor's health check (platform/serving.answers) against a real child process:
a worker that dies while it is being pinged is seen when it dies, not when the check's
timeout runs out (uvicorn's own ping waits the whole timeout: the supervisor holds both
ends of the pipe, so no end of file tells it)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from types import SimpleNamespace

from ecommerce.platform.serving import answers


def _never_answers(conn) -> None:  # noqa: ANN001 - a pipe end
    time.sleep(120)


def _answers_once(conn) -> None:  # noqa: ANN001
    conn.recv()
    conn.send(True)
    time.sleep(120)


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


def test_a_worker_that_answers_is_alive():
    worker = _worker(_answers_once)
    try:
        assert answers(worker, 60) is True
    finally:
        worker.process.kill()
        worker.process.join(10)
