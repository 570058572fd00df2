"""Scale-out: `ragsys index --ray` runs extraction, chunking and embedding on a Ray cluster.

Only the executors live here; planning by content hash, the caches, the generation writer
and the atomic switch are `ragsys.index`'s, unchanged. Ray is imported only when a
`RayExecutor` connects (`pip install 'ragsys[ray]'`), so ragsys works without it.
"""

from ragsys.distributed.cluster import ClusterError, RayOptions, RayUnavailableError, parse_address
from ragsys.distributed.executor import RayExecutor

__all__ = ["ClusterError", "RayExecutor", "RayOptions", "RayUnavailableError", "parse_address"]
