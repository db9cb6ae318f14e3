"""Connecting to Ray (the optional ``darklens[ray]`` extra) with errors a user can act on.

``address`` is ``local`` (start a private Ray instance on this machine, loopback only), ``auto``
(the cluster that ``ray start`` made on this node) or ``HOST:PORT`` / ``ray://HOST:PORT`` of a
running cluster's head. A remote address is probed first so an unreachable one fails in seconds
with its name, not after Ray's own retries.
"""

from __future__ import annotations

import logging
import socket
from types import ModuleType

from darklens.config import ConfigError

LOCAL = "local"
_PROBE_TIMEOUT_S = 3.0


def ray_module() -> ModuleType:
    """The ``ray`` package, or ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--ray needs Ray, which is not installed: pip install 'darklens[ray]' "
            "(scripts/setup.sh installs it)"
        ) from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``auto``."""
    if address == "auto":
        return None
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"--ray expects local, auto or HOST:PORT of a Ray cluster's head, got {address!r}"
        )
    return host, int(port)


def connect(address: str = LOCAL, num_cpus: int | None = None) -> ModuleType:
    """Ray, initialised for ``address`` (a connection this process already has is kept, once a
    remote address has proved reachable); ``num_cpus`` caps a local instance."""
    ray = ray_module()
    target = None if address == LOCAL else _host_port(address)
    if target is not None:
        try:
            socket.create_connection(target, timeout=_PROBE_TIMEOUT_S).close()
        except OSError as err:
            raise ConfigError(
                f"cannot reach the Ray cluster at {address} ({err.strerror or err}); start one "
                "with `ray start --head` there, or use --ray local"
            ) from None
    if ray.is_initialized():
        return ray
    if address == LOCAL:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level=logging.WARNING,
        )
        return ray
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError) as err:
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {err}") from None
    return ray
