"""Serving with uvicorn: one process, or a supervisor with N workers that logs every
worker's exit and replacement (uvicorn's own supervisor says only "died", and in our
parent process nothing was configured to print even that).

Why a worker was replaced before (issue 16): uvicorn's supervisor pings each worker over
a pipe every half second and kills one that does not answer within
`timeout_worker_healthcheck` (5 s by default). The answer comes from a thread inside the
worker, which needs the GIL and a core; under a burst of sign-ups (argon2 hashes in
threads, both cores busy) it can miss 5 s and a healthy, merely busy worker was killed
with its requests in flight. The timeout is now `WORKER_HEALTHCHECK_SECONDS` (60 s), and
password hashing is bounded (accounts.security.Passwords), so a busy worker answers.

Each worker listens on a socket of its own, all bound to the address with SO_REUSEPORT, so
that the kernel spreads new connections evenly over the workers. On uvicorn's one shared
socket, the worker whose accept loop woke first took a whole burst of connections: a flash
sale's 32 clients all landed on one of two workers and the other sat idle (issue 20). A
replaced worker takes over its predecessor's socket, with the connections waiting on it.

A worker that dies while it is being pinged is seen at once (`answers`): uvicorn's ping
waits its whole timeout for it, since the supervisor holds both ends of the pipe and no
end of file tells it the worker is gone; a worker killed just after the supervisor saw it
alive was replaced 60 s late, as one that "did not answer the health check". Why a worker
went is its exit, whenever its sentinel says it has ended (`health`).

Workers are forked from the supervisor, which imports the app's modules once before the
first (decision 86), instead of uvicorn's spawn, where each worker is a new interpreter
that imports them all again: 2.5-3 s of CPU a worker on the 2-core machines here, paid at
every start and every replacement, and one copy of the modules' memory per worker instead
of pages shared. A worker still builds its own app, pools and connections (the factory
runs in the worker; the supervisor opens none). A replacement, and SIGHUP's restart, run
the code the supervisor loaded: a new release is a new server (docs/deploy.md)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import multiprocessing.connection
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading

import uvicorn
from uvicorn._subprocess import subprocess_started
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from ecommerce.platform.settings import Settings

log = logging.getLogger("ecommerce.supervisor")


def exit_reason(exitcode: int | None) -> str:
    """A worker's exit code in words ("killed by SIGKILL", "exited with code 3")."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that other SO_REUSEPORT sockets may share."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


FORK = multiprocessing.get_context("fork")


class ForkedWorker(Process):
    """uvicorn's worker (its pipe for the health check, its thread that answers it), forked
    instead of spawned. The supervisor has no thread of its own then (the sidecar's watcher
    only waits, and logging's locks are made anew in a forked child)."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]):
        super().__init__(config, sockets)
        self.process = FORK.Process(target=subprocess_started, kwargs={  # type: ignore[assignment]
            "config": config, "target": self.target, "sockets": sockets, "stdin_fileno": None})


class LoggedMultiprocess(Multiprocess):
    """uvicorn's supervisor, with a socket per worker and a log line for every worker that
    exits or is replaced."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config, [reuse_port_socket(config.host, config.port)
                                  for _ in range(config.workers)])

    def _worker(self, index: int) -> Process:
        process = ForkedWorker(self.config, [self.sockets[index]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._worker(index) for index in range(self.processes_num)]
        log.info("workers started", extra={"pids": [p.pid for p in self.processes]})

    def restart_all(self) -> None:
        """SIGHUP: each worker replaced in turn, its successor serving before it retires."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._worker(index)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck,
                                        self.should_exit):
                new.kill()
                new.join()
                log.error("replacement worker not ready in time; restart stopped",
                          extra={"pid": new.pid, "kept": old.pid})
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        timeout = self.config.timeout_worker_healthcheck
        for index, process in enumerate(self.processes):
            reason = health(process, timeout)
            if reason is None:
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker failed to start; stopping",
                          extra={"pid": process.pid, "reason": reason})
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            replacement = self._worker(index)
            self.processes[index] = replacement
            log.error("worker replaced", extra={"pid": process.pid, "reason": reason,
                                                "replacement": replacement.pid})

    def join_all(self) -> None:
        for process in self.processes:
            process.join()
            log.info("worker stopped", extra={"pid": process.pid,
                                              "reason": exit_reason(process.exitcode)})


def health(process: Process, timeout: float) -> str | None:
    """None if the worker answers a health check within `timeout`; otherwise why not: how
    it ended, or that it did not answer. Whether it ended is its sentinel's word, not
    `is_alive()`: a killed process's pipes close a moment before the kernel lets it be
    reaped, and in that moment `is_alive()` still said True, so a worker killed by SIGKILL
    was logged as one that "did not answer the health check" (seen in a test run)."""
    if answers(process, timeout):
        return None
    if multiprocessing.connection.wait([process.process.sentinel], 0):
        process.process.join()  # it has ended: reaped here, its exit code is known
        return exit_reason(process.process.exitcode)
    return f"did not answer the health check within {timeout:g} s; killed"


def answers(process: Process, timeout: float) -> bool:
    """Whether the worker answers a health check within `timeout`: False as soon as it
    dies (its process's sentinel), not only once the timeout has passed."""
    try:
        process.parent_conn.send(b"ping")
        ready = multiprocessing.connection.wait(
            [process.parent_conn, process.process.sentinel], timeout)
        if process.parent_conn in ready:
            process.parent_conn.recv()
            return True
    except (OSError, EOFError, pickle.UnpicklingError):
        pass
    return False


def preload(config: uvicorn.Config) -> None:
    """Import the app's module (not its factory: no pool, connection or thread here) for the
    workers forked after it, and freeze what it made, so that a worker's collections leave
    those pages shared (the Python docs' advice before a fork)."""
    importlib.import_module(str(config.app).partition(":")[0])
    gc.collect()
    gc.freeze()


class PortInUse(Exception):  # noqa: N818 - a refusal to start, said to the operator
    pass


def check_port_free(host: str, port: int) -> None:
    """PortInUse if something listens on host:port. The workers' sockets share the port
    with SO_REUSEPORT, which would let a second server (any program that asks for it too)
    silently split the traffic with the first: a plain bind first tells."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as error:
        raise PortInUse(f"{host}:{port} is in use ({error.strerror}): another server "
                        "listens there. Stop it, choose another --port, or pass "
                        "--reuse-port to share the port with it on purpose") from None
    finally:
        probe.close()


def serve(settings: Settings, *, host: str, port: int, workers: int,
          reuse_port: bool = False) -> None:
    """Serve `ecommerce.app:factory` until SIGTERM or SIGINT; PortInUse if the port is
    taken, unless `reuse_port` (share it with whoever has it, on purpose)."""
    if not reuse_port:
        check_port_free(host, port)
    trusted = settings.trusted_proxies
    config = uvicorn.Config(
        "ecommerce.app:factory", factory=True, host=host, port=port, workers=workers,
        access_log=False, log_config=None, lifespan="on", timeout_graceful_shutdown=10,
        # X-Forwarded-For is believed only from TRUSTED_PROXIES (uvicorn's default would
        # believe 127.0.0.1, so any local caller could pick its own address).
        proxy_headers=trusted is not None, forwarded_allow_ips=trusted or "",
        timeout_worker_healthcheck=int(settings.worker_healthcheck_seconds),
        timeout_keep_alive=settings.keep_alive_seconds)
    if workers > 1:
        preload(config)
        LoggedMultiprocess(config).run()
    else:
        uvicorn.Server(config).run()


class Sidecar:
    """A helper process beside the server (`ecommerce consume`), at a lower CPU priority
    (`nice`), so that on a busy machine requests come first and background work catches
    up when they leave room. Replaced when it exits unexpectedly, with a log line; stopped
    with the server."""

    def __init__(self, args: list[str], *, nice: int):
        self.args = args
        self.nice = nice
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def _start(self) -> subprocess.Popen[bytes]:
        nice = self.nice

        def prepare() -> None:  # in the child, before it runs
            os.nice(nice)
            _die_with_parent()

        return subprocess.Popen([sys.executable, "-m", "ecommerce", *self.args],
                                preexec_fn=prepare)

    def start(self) -> None:
        self.process = self._start()
        log.info("sidecar started", extra={"pid": self.process.pid, "command": self.args,
                                           "nice": self.nice})
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(2.0):
            assert self.process is not None
            if self.process.poll() is None:
                continue
            old = self.process
            self.process = self._start()
            log.error("sidecar replaced", extra={"pid": old.pid, "replacement": self.process.pid,
                                                 "reason": exit_reason(old.returncode)})

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies, even by SIGKILL, so a server
    that is killed leaves no sidecar behind."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
