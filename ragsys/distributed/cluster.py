"""Connecting to Ray: a local instance on this machine, or an existing cluster.

`--ray` alone starts Ray here (and stops it after the run); `--ray auto` joins the cluster
this machine is part of (`ray start` was run on it), and `--ray ray://HOST:10001` connects
through Ray Client. Joining never stops someone else's cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from ragsys.types import Frozen

LOCAL = "local"
_HOST_PORT = re.compile(r"^[\w.\-\[\]:]+:\d+$")


class RayUnavailableError(ValueError):
    """Ray is not installed where the driver runs."""


class ClusterError(ValueError):
    """The cluster is unreachable or misconfigured; the message says what to change."""


class RayOptions(Frozen):
    """Where to run and how files reach the workers.

    `shared_path`: files under this folder are at the same path on every node (NFS, a
    mounted bucket), so workers read them directly; any other file's bytes are shipped
    from the driver. `max_in_flight` bounds the files sent but not yet answered (default:
    the cluster's CPUs), which bounds the driver's memory (file bytes in flight).
    """

    address: str = LOCAL
    shared_path: Path | None = None
    max_in_flight: int | None = None
    num_cpus: int | None = None  # only for a local instance; None: all of this machine's


def parse_address(value: str) -> str:
    """`local`, `auto`, `ray://HOST:PORT` or `HOST:PORT`; anything else is a typed error.

    `--ray` takes an optional value, so `--ray docs/` would read the folder as an address:
    this is where that mistake is caught.

    >>> parse_address("ray://head:10001")
    'ray://head:10001'
    """
    if value in (LOCAL, "auto") or value.startswith("ray://") or _HOST_PORT.match(value):
        return value
    raise ClusterError(
        f"--ray {value!r} is not a Ray address: use --ray alone (a local Ray instance), --ray auto, "
        "or --ray ray://HOST:10001; put --ray after the paths to index, or write --ray=ADDRESS"
    )


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as e:
        raise RayUnavailableError(
            "--ray needs Ray on this machine and on every node: pip install 'ragsys[ray]'"
        ) from e
    return ray


@contextmanager
def connected(options: RayOptions) -> Iterator[ModuleType]:
    """Ray, initialised for the run; shut down after only if this run started it."""
    ray = import_ray()
    if ray.is_initialized():  # a caller (a notebook, a test) already connected: use theirs
        yield ray
        return
    try:
        if options.address == LOCAL:
            ray.init(num_cpus=options.num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=options.address, log_to_driver=False)
    except (ConnectionError, RuntimeError) as e:
        raise ClusterError(
            f"cannot connect to the Ray cluster at {options.address!r} ({e}); check that `ray start "
            "--head` runs there and the address and port are reachable from this machine"
        ) from e
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_cpus(ray: ModuleType) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
