"""Local ports and servers: probing, waiting, free ports, and the error a sandbox server raises."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

HOST = "127.0.0.1"
# A TCP connect to a local port either succeeds or is refused at once; this only bounds a firewall drop.
PROBE_TIMEOUT_S = 0.5
# How often to re-probe while waiting; short enough that tests do not notice the wait.
POLL_INTERVAL_S = 0.05


class ServiceError(RuntimeError):
    """An embedded server could not be started; the message is one human line."""


def port_answers(host: str, port: int) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until host:port accepts connections; False if it did not within timeout_s."""
    return poll(lambda: port_answers(host, port), timeout_s)


def poll(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
