"""``--ray ADDRESS``: the same work on a Ray cluster, with Ray Data.

The photos' paths go into a dataset; a first step reads each photo's bytes on this
machine (the one that holds the files, so other machines need no shared disk), and a
pool of actors, one per ``ray_cpus_per_actor`` of the cluster's CPUs, each with its
models loaded once, describes them. MP3s come back as bytes and are written here.

Before anything loads, every machine is asked whether it has the models (and gallery
people) the run needs; a machine without them is named with what it lacks. Killed
actors are restarted and their photos retried; a photo that comes back twice is kept
once (``run_collection`` drops the second).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from describe_local.collection.spec import TaskSpec
from describe_local.collection.work import close_task, do_photo, read_photo
from describe_local.errors import ModelsMissingOnNodes, RayClusterError, RayNotInstalled

log = logging.getLogger(__name__)

INSTALL_RAY = "pip install 'describe-local[ray]'"
NODE_ID_LABEL = "ray.io/node-id"  # a label every Ray node has: its id
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps to loopback
CONNECT_TIMEOUT_S = 10.0


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayNotInstalled` saying how to install it."""
    try:
        import ray
        import ray.data  # the ray[data] extra, not only ray's core
    except ImportError as exc:
        raise RayNotInstalled(f"--ray needs Ray, which is not installed ({exc.name or exc}); install it with "
                              f"`{INSTALL_RAY}`, or use --jobs N on this machine") from None
    return ray


def run_ray(todo: Sequence[tuple[int, str]], spec: TaskSpec, address: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, record)`` for each photo of ``todo`` as it finishes on the cluster at ``address``."""
    _single_machine_if_loopback(address)
    ray = import_ray()
    connect(ray, address)
    try:
        check_nodes(ray, spec.needs)
        per_actor = spec.settings.ray_cpus_per_actor
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < per_actor:
            raise RayClusterError(f"the Ray cluster at {address} has {cpus} CPUs and each worker needs "
                                  f"{per_actor} (setting ray_cpus_per_actor); add machines or lower it")
        actors = max(1, min(cpus // per_actor, len(todo)))
        yield from _describe(ray, todo, spec.with_threads(per_actor), actors, per_actor)
    finally:
        ray.shutdown()


def connect(ray: Any, address: str) -> None:
    """Join the cluster at ``address`` as a driver, quietly (Ray's own bars and logs off)."""
    _single_machine_if_loopback(address)
    _check_reachable(address)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=True, ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayClusterError(
            f"cannot reach a Ray cluster at {address!r} ({_first_line(exc)}); start one with `ray start --head` "
            "and give its address (HOST:PORT), or auto on one of its machines (README: Big collections)") from None
    _keep_stdout_ours()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.verbose_progress = False


def _single_machine_if_loopback(address: str) -> None:
    """For a cluster addressed on loopback (one machine, e.g. the tests'), keep Ray on loopback.

    Ray otherwise swaps 127.0.0.1 for the machine's network address, where a cluster started
    on loopback (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head --node-ip-address=127.0.0.1``,
    which then listens on 127.0.0.1 only) cannot be found, and the driver waits forever.
    """
    host = address.rpartition(":")[0].strip("[]") if ":" in address else address
    if host != "localhost" and host != "::1" and not host.startswith("127."):
        return
    os.environ.setdefault(SINGLE_MACHINE_ENV, "0")
    constants = sys.modules.get("ray._private.ray_constants")  # read when ray was imported
    if constants is not None and os.environ[SINGLE_MACHINE_ENV] == "0":
        constants.ENABLE_RAY_CLUSTER = False


def _check_reachable(address: str) -> None:
    """Fail at once, rather than wait on Ray's retries, when nothing answers at ``address``."""
    host, _, port = address.rpartition(":")
    if address == "auto" or not port.isdigit() or address.startswith("ray://"):
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayClusterError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with `ray start --head` "
            "and give the address it prints, or auto on one of its machines (README: Big collections)") from None


def _keep_stdout_ours() -> None:
    """Send Ray's notices to the driver (e.g. "the actor died, its task will be retried") to our
    log instead of stdout, where Ray prints them and where they would break the JSON lines.
    Ray offers no setting for it, so its printer is replaced, if it is where Ray 2.x keeps it."""
    import ray._private.worker as ray_worker

    printer = getattr(ray_worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "describe_local", False):
        return

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        for line in data.get("lines") or []:
            log.info("ray (%s): %s", data.get("pid"), line)

    to_log.describe_local = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_log


def check_nodes(ray: Any, needs: Sequence[str]) -> None:
    """Raise :class:`ModelsMissingOnNodes` naming each machine that lacks something of ``needs``
    (or describe-local itself)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(missing_here)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    pending = {
        n["NodeID"]: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
        .remote(list(needs))
        for n in nodes
    }
    problems = []
    for node in nodes:
        where = f"{node.get('NodeManagerHostname') or '?'} ({node.get('NodeManagerAddress') or '?'})"
        try:
            _, missing = ray.get(pending[node["NodeID"]], timeout=300)
        except Exception as exc:  # e.g. describe-local is not importable there
            problems.append(f"{where}: cannot run describe-local there ({_first_line(exc)})")
            continue
        if missing:
            problems.append(f"{where} lacks {', '.join(missing)}")
    if problems:
        raise ModelsMissingOnNodes(
            "some machines of the Ray cluster cannot describe like this one: " + "; ".join(problems)
            + ". Install describe-local at the same place on every machine and copy models/ and known_faces/ "
            "there too (README: Big collections)")


def missing_here(needs: list[str]) -> tuple[str, list[str]]:
    """This machine's name and which of ``needs`` it does not have (run on each node)."""
    return socket.gethostname(), [path for path in needs if not os.path.exists(path)]


def _describe(ray: Any, todo: Sequence[tuple[int, str]], spec: TaskSpec, actors: int,
              per_actor: int) -> Iterator[tuple[int, dict[str, Any]]]:
    here = ray.get_runtime_context().get_node_id()
    # One block per photo: a block is what one actor takes at a time, so more photos per block
    # would leave actors idle and hold records back until their whole block is done.
    dataset = ray.data.from_items([{"index": index, "path": path} for index, path in todo],
                                  override_num_blocks=len(todo))
    # Read where the files are: this machine. No CPU is reserved (it waits on the disk), so the
    # actors can hold all of them; one task at a time, because tasks that need no CPU would
    # otherwise each get a Python worker process of their own (dozens, seconds of CPU each).
    dataset = dataset.map_batches(
        read_batch, batch_size=1, num_cpus=0, fn_kwargs={"max_bytes": spec.settings.max_image_bytes},
        label_selector={NODE_ID_LABEL: here}, compute=ray.data.TaskPoolStrategy(size=1),
    )
    # Ray Data restarts a killed actor (max_restarts=-1) and retries its photos by default.
    dataset = dataset.map_batches(
        PhotoActor, fn_constructor_kwargs={"spec": spec}, batch_size=1, num_cpus=per_actor,
        compute=ray.data.ActorPoolStrategy(size=actors),
    )
    try:
        for row in dataset.iter_rows():
            yield int(row["index"]), pickle.loads(row["record"])
    except ModelsMissingOnNodes:
        raise
    except Exception as exc:
        cause = _describe_local_cause(exc)
        if cause is not None:
            raise cause from None
        raise RayClusterError(f"the Ray cluster stopped describing: {_first_line(exc)}; run again with "
                              "--resume (and --jsonl FILE) to finish") from None


def read_batch(batch: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Add each photo's bytes and hash (or, for one that cannot be read, its failure record)."""
    import numpy as np

    datas, hashes, records = [], [], []
    for path in batch["path"]:
        data, sha256, failure = read_photo(str(path), max_bytes)
        datas.append(data or b"")
        hashes.append(sha256 or "")
        records.append(pickle.dumps(failure) if failure is not None else b"")
    return {"index": batch["index"], "path": batch["path"], "data": np.array(datas, dtype=object),
            "sha256": np.array(hashes, dtype=object), "record": np.array(records, dtype=object)}


class PhotoActor:
    """A Ray actor with the task built once (its models loaded); describes one batch at a time."""

    def __init__(self, spec: TaskSpec) -> None:
        host, missing = missing_here(list(spec.needs))
        if missing:  # a machine that joined after the check
            raise ModelsMissingOnNodes(f"the Ray machine {host} lacks {', '.join(missing)}; copy models/ and "
                                       "known_faces/ there (README: Big collections)")
        self.task = spec.build()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        records = []
        for path, data, sha256, failure in zip(batch["path"], batch["data"], batch["sha256"], batch["record"],
                                               strict=True):
            if failure:
                records.append(failure)
            else:
                records.append(pickle.dumps(do_photo(self.task, str(path), bytes(data), str(sha256))))
        return {"index": batch["index"], "record": np.array(records, dtype=object)}

    def __del__(self) -> None:
        close_task(getattr(self, "task", None))


def _describe_local_cause(exc: BaseException) -> BaseException | None:
    """Our own error inside Ray's wrapping (an actor that could not load its models), if any."""
    from describe_local.errors import DescribeLocalError

    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 20:  # bounded: causes can chain
        if isinstance(current, DescribeLocalError):
            return current
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else (current.__cause__ or current.__context__)
        seen += 1
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

