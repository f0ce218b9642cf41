"""Spread batches of work over a Ray cluster (`--ray ADDRESS|auto`), or run them in this process when no cluster.

One small layer for every stage that evaluates populations (chimera, evolve): the shared data (market columns, the
simulation template) is put into the object store once, the items are cut into batches of a few thousand, each
batch is one task that calls the Rust batch function (parallel inside the worker), and the results come back in
item order. Items carry their own seeds, so the answer does not depend on where or in what order batches ran.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from apexctl.errors import UsageError

Item = TypeVar("Item")
Out = TypeVar("Out")

#: Items per task: enough to amortize a task's overhead, small enough to spread a population over the nodes.
DEFAULT_BATCH = 2000


class Shared:
    """A value every batch reads: the value itself locally, an object-store reference on a cluster."""

    def __init__(self, value: Any, ref: Any = None) -> None:
        self.value = value
        self.ref = ref


class Cluster:
    """Where batches run. `Cluster(None)` runs them here; `Cluster("auto")` or `Cluster("ray://host:10001")` joins
    (or, for "auto" without a running cluster, starts) a Ray cluster. Use as a context manager or call `close()`."""

    def __init__(self, address: str | None, *, num_cpus: int | None = None) -> None:
        self.address = address
        self._ray: Any = None
        self._started = False
        self._remote: dict[Callable, Any] = {}
        if address is None:
            return
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - ray is a declared dependency
            raise UsageError("--ray: the 'ray' package is not installed") from exc
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if num_cpus is not None:
                kwargs["num_cpus"] = num_cpus
            # Workers must import apexctl from the same place as this process (a source checkout or a venv).
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": _package_root()}}
            if address != "auto":
                kwargs.pop("num_cpus", None)
            last: Exception | None = None
            # A loaded machine can make a fresh local Ray miss its start-up deadline once; one retry is enough.
            for _attempt in range(2):
                try:
                    if address == "auto":
                        try:
                            ray.init(address="auto", **kwargs)
                        except ConnectionError:
                            ray.init(**kwargs)
                    else:
                        ray.init(address=address, **kwargs)
                    last = None
                    break
                except Exception as exc:  # Ray raises bare Exception on start-up timeouts
                    last = exc
                    ray.shutdown()
            if last is not None:
                first_line = str(last).strip().splitlines()[0] if str(last).strip() else type(last).__name__
                raise UsageError(f"--ray {address}: cannot start or join the Ray cluster: {first_line}") from last
            self._started = True

    @property
    def distributed(self) -> bool:
        return self._ray is not None

    def put(self, value: Any) -> Shared:
        """Makes `value` available to every batch; on a cluster it is stored once, not shipped per task."""
        if self._ray is None:
            return Shared(value)
        return Shared(value, self._ray.put(value))

    def map(
        self,
        fn: Callable[[Any, Sequence[Item]], Sequence[Out]],
        shared: Shared,
        items: Sequence[Item],
        batch_size: int = DEFAULT_BATCH,
    ) -> list[Out]:
        """`fn(shared_value, batch)` over consecutive batches of `items`; the results concatenated in item order.

        `fn` must be a module-level function (it is shipped to the workers by reference) returning one result per
        item of its batch.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        if self._ray is None:
            parts = [fn(shared.value, batch) for batch in batches]
        else:
            remote = self._remote.get(fn)
            if remote is None:
                remote = self._remote[fn] = self._ray.remote(_call)
            parts = self._ray.get([remote.remote(fn, shared.ref, list(batch)) for batch in batches])
        out: list[Out] = []
        for batch, part in zip(batches, parts, strict=True):
            if len(part) != len(batch):
                raise RuntimeError(f"internal: {fn.__name__} returned {len(part)} results for {len(batch)} items")
            out.extend(part)
        return out

    def close(self) -> None:
        """Leaves the cluster if this object joined it (a cluster someone else initialized is left alone)."""
        if self._ray is not None and self._started:
            self._ray.shutdown()
        self._ray = None
        self._started = False

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _call(fn: Callable[[Any, Sequence[Any]], Sequence[Any]], shared: Any, batch: Sequence[Any]) -> Sequence[Any]:
    # Ray resolves the object reference `shared` to its value before calling the task.
    return fn(shared, batch)


def _package_root() -> str:
    import apexctl

    root = os.path.dirname(os.path.dirname(os.path.abspath(apexctl.__file__)))
    existing = os.environ.get("PYTHONPATH")
    return root if not existing else f"{root}{os.pathsep}{existing}"
