"""Command line: ``scarlet2 fit``, ``scarlet2 sample``, ``scarlet2 survey`` and ``scarlet2 demo``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import InputError, ScarletError, StoreError


def _survey(args) -> int:
    from .survey.driver import run

    cache = False if args.no_cache else True
    summary = run(
        args.input, args.out, tile=args.tile, halo=args.halo, workers=args.workers, scheduler=args.scheduler,
        retry_failed=args.retry_failed, parquet=args.parquet, cache_dir=cache, progress=not args.quiet,
        max_iter=args.max_iter, max_structures=args.max_structures or None, flux_errors=args.flux_errors,
    )  # fmt: skip
    print(
        f"scarlet2: {summary.n_sources} sources from {summary.n_regions} regions ({summary.done} fitted now, "
        f"{summary.skipped} done before, {len(summary.failed)} failed) in {summary.seconds:.1f} s -> {args.out}",
        file=sys.stderr,
    )
    if summary.failed:
        print(f"scarlet2: failed regions: {', '.join(summary.failed)} (see /regions; --retry-failed)", file=sys.stderr)
        return 1
    return 0


def _fit(args) -> int:
    from .labeled.publish import check_output, publish
    from .labeled.results import fit_dataset
    from .labeled.store import open_dataset

    t0 = time.perf_counter()
    # before any reading or fitting: an output that must not or cannot be written
    inputs = args.input if isinstance(args.input, list) else [args.input]
    check_output(args.out, overwrite=args.overwrite, inputs=[*inputs, args.catalog])
    datasets = [open_dataset(path) for path in inputs]
    if len(datasets) > 1:  # a joint fit: each observation named after its store (hst.zarr -> "hst")
        names = _store_names(inputs)
        datasets = [d.assign_attrs(name=d.attrs.get("name") or n) for d, n in zip(datasets, names, strict=True)]
    catalog = _read_catalog(args.catalog) if args.catalog else None
    what = ", ".join(f"{p} ({dict(d.sizes)})" for p, d in zip(inputs, datasets, strict=True))
    print(f"scarlet2: fitting {what}" + (" jointly" if len(datasets) > 1 else ""), file=sys.stderr)
    ds = datasets[0] if len(datasets) == 1 else datasets
    result = fit_dataset(ds, catalog=catalog, model=args.model, max_iter=args.max_iter, progress=not args.quiet)
    publish(result, args.out)
    if args.plot:
        from .labeled.plot import plot_result

        plot_result(result, path=args.plot)
    cat, record = result["catalog"], result["fit"].attrs
    state = "converged" if record["converged"] else f"not converged (limit {args.max_iter}; raise --max-iter)"
    if record.get("boxes_grown"):
        state += f", boxes of {record['boxes_grown']} sources grown to hold their light and refitted"
    print(
        f"scarlet2: {cat.sizes['source']} sources, chi2/dof = {result.attrs['chi2_dof']:.3f}, "
        f"{record['iterations']} iterations, {state}, {time.perf_counter() - t0:.1f} s -> {args.out}"
        + (f", {args.plot}" if args.plot else ""),
        file=sys.stderr,
    )
    return 0


def _store_names(paths) -> list[str]:
    """Observation names from store paths: the last path part without its suffix, made unique."""
    names = []
    for i, p in enumerate(paths):
        stem = Path(str(p).rstrip("/")).name.split(".")[0] or f"obs{i}"
        names.append(stem if stem not in names else f"{stem}{i}")
    return names


def _sample(args) -> int:
    import xarray as xr

    from .labeled.publish import check_output, publish
    from .labeled.results import sample_result

    t0 = time.perf_counter()
    check_output(args.out, overwrite=args.overwrite, inputs=[args.input])
    tree = xr.open_datatree(args.input, engine="zarr")
    post = sample_result(
        tree,
        args.chains,
        args.warmup,
        args.samples,
        args.seed,
        progress=not args.quiet,
        dense_mass=args.dense,
        target_acceptance=args.target_accept,
        free_forms=args.free_forms,
    )
    publish(post, args.out)
    print(
        f"scarlet2: {args.chains} chains x {args.samples} draws, {post.attrs['divergences']} divergences, "
        f"{time.perf_counter() - t0:.1f} s -> {args.out}",
        file=sys.stderr,
    )
    return 0


def _demo(args) -> int:
    from .demo import demo_store

    path = demo_store()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ns = argparse.Namespace(
        input=str(path),
        out=str(out / "demo_fit.zarr"),
        catalog=None,
        plot=str(out / "demo_fit.png"),
        model="parametric",
        max_iter=args.max_iter,
        quiet=args.quiet,
        overwrite=True,
    )
    return _fit(ns)


def _read_catalog(path):
    """A catalog from a CSV file (header line y,x or ra,dec) or a catalog Zarr store, local or
    remote; errors name the file."""
    import numpy as np
    import xarray as xr

    if str(path).rstrip("/").endswith(".zarr"):
        try:
            return xr.open_dataset(path, engine="zarr", consolidated=False)
        except FileNotFoundError:
            raise
        except Exception as err:  # zarr and xarray raise several types for unreadable stores
            raise StoreError(f"catalog {path}: not a readable Zarr store ({type(err).__name__}: {err})") from None
    import fsspec

    # local or remote like the input store; a missing file raises FileNotFoundError naming it
    with fsspec.open(path, "rt") as fh:
        text = fh.read()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"catalog {path} is empty: give a header line (y,x or ra,dec) and one row per source")
    names = [n.strip() for n in lines[0].split(",")]
    if all(_is_number(n) for n in names):
        raise InputError(f"catalog {path}: the first line must name the columns (y,x or ra,dec), got {lines[0]!r}")
    if len(lines) == 1:
        raise InputError(f"catalog {path} has a header ({','.join(names)}) but no rows")
    try:
        rows = [[float(v) for v in line.split(",")] for line in lines[1:]]
    except ValueError:
        raise InputError(
            f"catalog {path}: the first line must name the columns (y,x or ra,dec) and every other line "
            "hold numbers only"
        ) from None
    if any(len(r) != len(names) for r in rows):
        raise InputError(f"catalog {path}: rows do not all have the {len(names)} columns {names}")
    rows = np.asarray(rows, dtype=float)
    return {name: rows[:, k] for k, name in enumerate(names)}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line for a command-line user (no source line of scarlet2's)."""
    return f"scarlet2: {category.__name__}: {message}\n"


def _setup(args):
    from .config import set_cpu_threads

    # before any JAX computation: XLA sizes its CPU thread pool once per process
    threads = args.threads
    if threads is None:
        env = os.environ.get("PJRT_NPROC", "1")
        if not env.isdigit():
            raise InputError(f"PJRT_NPROC={env!r} is not a number of threads")
        threads = int(env)
    if threads < 0:
        raise InputError(f"--threads {threads}: give 0 (one per core) or a positive number")
    try:
        set_cpu_threads(threads or None)
    except RuntimeError as err:  # main() called in a process where JAX already runs
        print(f"scarlet2: --threads not applied: {err}", file=sys.stderr)
    if not getattr(args, "no_cache", False):
        from .config import enable_compilation_cache

        path = enable_compilation_cache()
        if not getattr(args, "quiet", False):
            print(f"scarlet2: compiled programs are cached in {path} (--no-cache to skip)", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scarlet2", description="Source modeling and deblending (JAX + xarray)")
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="detect (or read a catalog), fit, and write a result Zarr")
    f.add_argument(
        "input", nargs="+", help="observation Zarr store(s) (path or fsspec URL); several are fitted jointly"
    )
    f.add_argument("--out", required=True, help="result Zarr store")
    f.add_argument("--catalog", help="CSV with y,x (or ra,dec) columns, or a catalog Zarr (path or fsspec URL)")
    f.add_argument("--plot", help="write an RGB data/model/residual PNG here")
    f.add_argument("--model", default="parametric", help="initialization preset (parametric, freeform, single)")
    f.add_argument("--max-iter", type=int, default=1000)
    f.add_argument("--overwrite", action="store_true")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_fit)
    s = sub.add_parser("sample", help="posterior draws (BlackJAX NUTS) around a fit result; writes a DataTree Zarr")
    s.add_argument("input", help="fit result Zarr store (scarlet2 fit --out)")
    s.add_argument("--out", required=True, help="posterior Zarr store (ArviZ layout)")
    s.add_argument("--chains", type=int, default=4)
    s.add_argument("--warmup", type=int, default=500)
    s.add_argument("--samples", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--dense", action="store_true", help="adapt a dense mass matrix (correlated parameters)")
    s.add_argument("--free-forms", action="store_true", help="sample free-form pixels too (held at the fit by default)")
    s.add_argument(
        "--target-accept",
        type=float,
        default=None,
        help="mean acceptance the step size is adapted to (fewer divergences when higher; default 0.9)",
    )
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_sample)
    v = sub.add_parser("survey", help="deblend a mosaic region by region on dask workers; resumable Zarr output")
    v.add_argument("input", help="mosaic observation Zarr store (path or fsspec URL)")
    v.add_argument("--out", required=True, help="output Zarr store: model/residual mosaics, catalog, region records")
    v.add_argument("--tile", type=int, default=256, help="region core size in pixels (default 256)")
    v.add_argument("--halo", type=int, default=None, help="halo around each core in pixels (default: from the boxes)")
    where = v.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core; 0: "
                       "in this process)")  # fmt: skip
    where.add_argument("--scheduler", help="address of a running dask scheduler (tcp://host:8786)")
    v.add_argument("--retry-failed", action="store_true", help="rerun the regions recorded as failed")
    v.add_argument("--parquet", help="also write the catalog as Parquet here")
    v.add_argument("--max-iter", type=int, default=300)
    v.add_argument(
        "--flux-errors", choices=("marginal", "linear"), default="marginal",
        help="flux errors from the Fisher information over shapes too (default), or conditional on them (cheaper)",
    )  # fmt: skip
    v.add_argument(
        "--max-structures", type=int, default=4,
        help="compiled scene structures a worker keeps before it drops them all (bounds its memory; 0: keep all)",
    )  # fmt: skip
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=_survey)
    d = sub.add_parser("demo", help="fit the bundled demo region; writes demo_fit.zarr and demo_fit.png")
    d.add_argument("--out", default="scarlet2-demo", help="output folder (default: ./scarlet2-demo)")
    d.add_argument("--max-iter", type=int, default=1000)
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=_demo)
    for sp in (f, s, v, d):
        sp.add_argument("--no-cache", action="store_true", help="do not use the persistent compilation cache")
        sp.add_argument(
            "--threads",
            type=int,
            default=None,
            help="XLA CPU threads for this process (default: $PJRT_NPROC, else 1, the fastest at these sizes "
            "on the machines measured; 0: one per core). See scarlet2.set_cpu_threads",
        )
    f.add_argument("--traceback", action="store_true", help="on bad input, show the traceback, not only the message")
    args = parser.parse_args(argv)
    import warnings

    formatter = warnings.formatwarning
    if not getattr(args, "traceback", False):
        warnings.formatwarning = _warning_line
    try:
        _setup(args)
        return args.func(args)
    except (OSError, ValueError, KeyError, ScarletError) as err:
        # bad input (a missing file, a store or catalog without what it needs, data the
        # validation refuses): the message names it; a traceback would bury it
        if getattr(args, "traceback", False):
            raise
        what = f"{type(err).__name__}: " if isinstance(err, KeyError) else ""
        print(f"scarlet2 {args.command}: error: {what}{err}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatter  # main() may run inside a larger program


if __name__ == "__main__":
    sys.exit(main())
