"""Running a survey: regions on dask.distributed workers (or in this process), written as they
finish, resumable.

Workers are processes (dask's spawn start method: never forked after JAX started), one thread
each by default, with single-threaded XLA so that N workers use N cores; they share JAX's
persistent compilation cache (``cache_dir``), so a program compiled by one is loaded by the
others and by later runs. Each task reads its region's window of the input itself (numpy in,
numpy out), fits it (:func:`.kernel.fit_region`) and writes its chunks and record
(:mod:`.output`): a worker never holds more than its region's window, and the programs of at
most ``max_structures`` scene structures.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import traceback

import xarray as xr

from ..config import default_cache_dir, enable_compilation_cache
from ..errors import InputError
from ..labeled.schema import check_layout, get_wcs, read_window
from ..labeled.store import open_dataset
from .kernel import SurveySettings, fit_region
from .output import DONE, FAILED, finalize, input_identity, prepare_output, read_records, write_failure, write_region
from .regions import Region, plan_regions

#: Environment of worker processes: XLA's CPU pool of one thread (scarlet2.set_cpu_threads), and
#: one BLAS thread: N workers use N cores.
WORKER_ENV = {"PJRT_NPROC": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
#: Default of ``run(max_structures=)``: a worker holds 40-110 MB per structure (measured).
MAX_STRUCTURES = 4
#: Seconds to wait for a scheduler given by address before refusing it.
CONNECT_TIMEOUT_S = 10


@dataclasses.dataclass
class SurveySummary:
    """What a run did: regions done now, before (resumed) and failed; sources; time."""

    out: str
    n_regions: int
    done: int  # finished in this run
    skipped: int  # already finished (resumed)
    failed: list  # names of failed regions
    n_sources: int
    seconds: float

    @property
    def sources_per_second(self) -> float:
        return self.n_sources / self.seconds if self.seconds > 0 else float("nan")

    def __repr__(self):
        return (
            f"SurveySummary({self.out}: {self.done} regions fitted, {self.skipped} already done, "
            f"{len(self.failed)} failed of {self.n_regions}; {self.n_sources} sources in {self.seconds:.1f} s)"
        )


@dataclasses.dataclass(frozen=True)
class _Source:
    """Where a worker reads the input: a Zarr store (URL) or arrays shipped with the task."""

    url: str | None
    storage_options: dict | None


def run(
    ds,
    out,
    tile: int = 256,
    halo: int | None = None,
    client=None,
    resume: bool = True,
    retry_failed: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    storage_options: dict | None = None,
    parquet=None,
    cache_dir: str | bool = True,
    progress: bool = True,
    max_structures: int | None = MAX_STRUCTURES,
    **fit_settings,
) -> SurveySummary:
    """Deblend a mosaic region by region into the Zarr store ``out``.

    Parameters
    ----------
    ds
        The mosaic: an observation Dataset (lazy, from :func:`scarlet2.open_dataset`) or the
        path / URL of its Zarr store.
    out
        Output store (path or fsspec URL): model and residual mosaics, ``/catalog``, region
        records (:mod:`scarlet2.survey.output`); open it with :func:`scarlet2.open_result`.
    tile, halo
        Core size of the regions and the width of the halo around each (default: half the
        largest source box plus a margin, at least the PSF's radius), pixels.
    client
        A ``dask.distributed.Client`` to run on. Without one: ``scheduler`` (an address), else a
        LocalCluster of ``workers`` processes (default: the CPU count) made for this run;
        ``workers=0`` runs the regions one after another in this process.
    resume
        If ``out`` exists (made for this input and these settings) finish what it lacks; False
        refuses an existing store.
    retry_failed
        Also rerun the regions recorded as failed.
    storage_options
        fsspec options for URLs of the input and the output (credentials, endpoint).
    parquet
        Also write the catalog as Parquet to this path or URL.
    cache_dir
        JAX persistent compilation cache of the worker processes: True for
        :func:`scarlet2.config.default_cache_dir`, a folder, or False for none. (With
        ``workers=0`` this process's JAX configuration is left as it is.)
    max_structures
        Scene structures whose compiled programs a worker process keeps: when it has compiled
        for more, it drops them all (``jax.clear_caches``) and recompiles on demand (the
        persistent cache spares the XLA part). Bounds a worker's memory by the tile size
        instead of by how many structures a large mosaic brings. None keeps every program;
        with ``workers=0`` this process's caches are left alone.
    fit_settings
        Fields of :class:`~scarlet2.survey.kernel.SurveySettings` (``threshold``, ``max_iter``, ...).

    Raises
    ------
    InputError, SchemaError
        Before any work: a mosaic that fails the schema's layout, no WCS, a tile smaller than
        the PSF, an output store made for another input, an unreachable scheduler.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    ds, source = _input(ds, storage_options)
    check_layout(ds)
    wcs = get_wcs(ds)
    if wcs is None:
        raise InputError("the mosaic has no WCS (coordinate 'wcs'): a survey catalog needs sky positions")
    psf_size = max(int(ds.sizes.get("psf_y", 0)), int(ds.sizes.get("psf_x", 0)))
    if isinstance(tile, int) and not isinstance(tile, bool) and tile < psf_size:
        raise InputError(f"tile {tile} is smaller than the PSF stamp ({psf_size} pixels); use a larger tile")
    base = SurveySettings(**fit_settings)
    halo = default_halo(base, psf_size) if halo is None else halo
    settings = dataclasses.replace(base, tile=tile, halo=halo)
    regions = plan_regions((ds.sizes["y"], ds.sizes["x"]), settings.tile, settings.halo)
    own_client, cluster = None, None
    if client is None and scheduler is not None:
        client = own_client = connect(scheduler)
    identity = input_identity(ds, source.url)
    out = os.fspath(out)
    try:
        prepare_output(out, ds, identity, settings, storage_options, resume=resume)
        records = read_records(out, storage_options)
        todo = [r for r in regions if r.name not in records or (retry_failed and records[r.name]["status"] == FAILED)]
        skipped = sum(1 for r in regions if records.get(r.name, {}).get("status") == DONE)
        if client is None and workers != 0 and todo:
            client, cluster = local_client(workers)
            own_client = client
        bar = tqdm(total=len(todo), disable=not progress, desc="survey", unit="region")
        cache = str(default_cache_dir()) if cache_dir is True else (cache_dir or None)
        task = functools.partial(
            process_region,
            out=out,
            settings=settings,
            storage_options=storage_options,
            cache_dir=cache,
            max_structures=max_structures,
        )
        if client is None:
            # this process: its JAX configuration and caches are the caller's
            local = functools.partial(task, cache_dir=None, max_structures=None)
            for r in todo:
                local(r, _task_input(ds, source, r), wcs=wcs)
                bar.update()
        else:
            _run_distributed(client, task, todo, ds, source, wcs, out, storage_options, bar)
        bar.close()
        bands = [str(b) for b in ds["band"].values]
        cat = finalize(out, regions, bands, wcs, storage_options, parquet, flux_errors=settings.flux_errors)
        records = read_records(out, storage_options)
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
    failed = [r.name for r in regions if records.get(r.name, {}).get("status") == FAILED]
    done = sum(1 for r in todo if records.get(r.name, {}).get("status") == DONE)
    n_sources = int(cat.sizes["source"])
    return SurveySummary(out, len(regions), done, skipped, failed, n_sources, time.perf_counter() - start)


def default_halo(settings: SurveySettings, psf_size: int) -> int:
    """Half the largest source box plus the least peak separation, at least the PSF's radius:
    a core source's box and its closest neighbours lie inside the region."""
    return int(max(settings.box // 2 + 2 * settings.min_separation + 4, psf_size // 2 + 1))


def _input(ds, storage_options):
    """The mosaic as a lazy Dataset, and where workers read it."""
    if isinstance(ds, str | os.PathLike):
        url = os.fspath(ds)
        return open_dataset(url, storage_options=storage_options), _Source(url, storage_options)
    if not isinstance(ds, xr.Dataset):
        what = type(ds).__name__
        raise TypeError(f"a survey runs on an observation Dataset or the path of its Zarr store, not {what}")
    url = ds.encoding.get("scarlet2_source")
    return ds, _Source(url, storage_options if url is not None else None)


def _task_input(ds, source: _Source, region: Region):
    """What a task gets: the store's URL (the worker reads its window), or the window's arrays."""
    if source.url is not None:
        return source
    y0, y1, x0, x1 = region.outer
    return read_window(ds, slice(y0, y1), slice(x0, x1))


@functools.lru_cache(maxsize=4)
def _open_input(url, storage_options_json):
    """The input opened once per worker process (keyed by URL and options as JSON)."""
    options = json.loads(storage_options_json)
    return open_dataset(url, storage_options=options or None)


def process_region(
    region: Region, source, *, wcs=None, out, settings, storage_options, cache_dir, max_structures=None
) -> dict:
    """One task: read the region's window, fit it, write its chunks and record. A region whose
    fit raises or ends non-finite is recorded as failed (with the error), not raised."""
    started = time.time()
    _configure(cache_dir)
    try:
        if isinstance(source, _Source):
            import dask

            ds = _open_input(source.url, json.dumps(source.storage_options or {}, sort_keys=True))
            y0, y1, x0, x1 = region.outer
            # read in this thread: inside a task, dask would send the window's read tasks to the
            # cluster, where they waited for the other workers' regions (the workers took turns)
            with dask.config.set(scheduler="synchronous"):
                image, weight, psf, bands = read_window(ds, slice(y0, y1), slice(x0, x1))
            wcs = get_wcs(ds) if wcs is None else wcs
        else:
            image, weight, psf, bands = source
        read = time.time()
        result = fit_region(region, image, weight, psf, bands, wcs, settings)
    except Exception as err:  # isolated: recorded, the survey goes on
        message = f"{type(err).__name__}: {err}"
        write_failure(out, region, message + "\n" + traceback.format_exc(limit=4), storage_options)
        return {"region": region.name, "status": FAILED, "error": message}
    result.record["max_rss_mb"] = _max_rss_mb()  # this worker's peak so far: memory per tile
    _bound_programs(result.record["structure"], max_structures)
    # when and where: unix times of the task's start, of its window read, of the record
    result.record.update(started=started, read=read, finished=time.time(), pid=os.getpid())
    write_region(out, region, result, storage_options)
    return {"region": region.name, "status": DONE, **result.record}


def _max_rss_mb() -> float:
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


_CONFIGURED = {}
#: Structures this worker process has compiled programs for since its caches were last cleared.
_STRUCTURES: set = set()


def _bound_programs(structure: str, limit: int | None) -> None:
    """Clear JAX's in-memory compilation caches once this process holds programs for more
    than ``limit`` scene structures (each holds tens of MB of executables and traces)."""
    if limit is None:
        return
    _STRUCTURES.add(structure)
    if len(_STRUCTURES) > limit:
        import gc

        import jax

        jax.clear_caches()
        gc.collect()
        _STRUCTURES.clear()
    _release_memory()


def _release_memory() -> None:
    """Give freed heap back to the system (glibc keeps it otherwise: a worker's RSS would stay
    at its peak after its caches are cleared). A no-op where there is no glibc."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols: glibc's, where it runs
    except (OSError, AttributeError):
        pass


def _configure(cache_dir) -> None:
    """Point this worker process's JAX at the shared persistent compilation cache (once)."""
    if cache_dir is None or _CONFIGURED.get("cache_dir") == cache_dir:
        return
    enable_compilation_cache(cache_dir)
    _CONFIGURED["cache_dir"] = cache_dir


def connect(address: str):
    """A Client of the scheduler at ``address``; a clear error if it cannot be reached."""
    from distributed import Client

    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as err:
        raise InputError(f"cannot reach the dask scheduler at {address} ({type(err).__name__}: {err})") from None


def local_client(workers: int | None):
    """A LocalCluster of worker processes (one thread each, single-threaded XLA) and its Client."""
    from distributed import Client, LocalCluster

    n = int(workers) if workers else max(os.cpu_count() or 1, 1)
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, env=dict(WORKER_ENV)
    )
    return Client(cluster), cluster


def _run_distributed(client, task, todo, ds, source, wcs, out, storage_options, bar):
    """Run every region, as many at a time as the cluster has threads, and record the ones whose
    worker was lost (KilledWorker) as failed.

    Regions are handed out one per free thread, not submitted all at once: the scheduler
    would assign queued tasks to workers ahead of time, and regions of unequal cost left one
    of two workers idle for the last 40% of a run (1024^2 field: 10 regions on one, 6 on the
    other).
    """
    from distributed import as_completed

    slots = max(sum(client.nthreads().values()), 1)
    pending = iter(todo)
    futures = {}
    running = as_completed()

    def submit_next():
        r = next(pending, None)
        if r is not None:
            key = f"scarlet2-{r.name}-{id(bar)}"
            f = client.submit(task, r, _task_input(ds, source, r), wcs=wcs, key=key, pure=False)
            futures[f] = r
            running.add(f)

    for _ in range(slots):
        submit_next()
    for f in running:
        r = futures.pop(f)
        err = f.exception()
        if err is not None:
            write_failure(out, r, f"{type(err).__name__}: {err}", storage_options)
        bar.update()
        f.release()
        submit_next()


def regions_of(ds, tile=256, halo=None, **fit_settings) -> list[Region]:
    """The regions a run over ``ds`` would use (for planning and inspection)."""
    base = SurveySettings(**fit_settings)
    psf_size = max(int(ds.sizes.get("psf_y", 0)), int(ds.sizes.get("psf_x", 0)))
    return plan_regions((ds.sizes["y"], ds.sizes["x"]), tile, default_halo(base, psf_size) if halo is None else halo)


__all__ = ["SurveySummary", "regions_of", "run"]
