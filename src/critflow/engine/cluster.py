"""Where Monte Carlo chunks run: this process, a local Dask cluster, or a Dask scheduler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from critflow.errors import CritflowError
from critflow.extras import needs


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler`` (tcp://host:8786) or for a local cluster of
    ``workers`` processes (one thread each); ``None`` when neither is given (run in-process)."""
    if not workers and not scheduler:
        yield None
        return
    with needs("dask", "scheduler=" if scheduler else "workers="):
        from distributed import Client, LocalCluster
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise CritflowError(
                "scheduler=",
                f"no Dask scheduler answers at {scheduler} ({exc})",
                "Start one (dask scheduler; dask worker ADDRESS) or use local workers (workers=).",
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers is not None and workers < 1:
        raise CritflowError("workers=", f"{workers} workers", "Give 1 or more workers.")
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
