"""Explicit, user-visible settings (nothing here runs on import)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    return Path(os.environ.get("SCARLET2_CACHE_DIR", Path.home() / ".cache" / "scarlet2" / "xla"))


def enable_compilation_cache(path=None, min_compile_time_s: float = 0.2) -> Path:
    """Turn on JAX's persistent compilation cache so a new process reuses compiled fits.

    Compilation is the largest cost of a first fit (seconds on CPU); with the cache a fresh
    process of the same scene structure loads the program from disk instead. This changes JAX's
    global configuration, so it is a call you make (the ``scarlet2`` CLI makes it unless
    ``--no-cache``), never an import side effect.

    Parameters
    ----------
    path
        Cache folder (default ``$SCARLET2_CACHE_DIR`` or ``~/.cache/scarlet2/xla``).
    min_compile_time_s
        Only programs that took at least this long to compile are stored.
    """
    import jax

    path = Path(path) if path is not None else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def set_cpu_threads(n: int | None) -> int | None:
    """Size XLA's CPU thread pool: how many threads one compiled program's operations run on.

    XLA's default is one thread per core, and it splits large operations (the FFTs) across
    them. At scarlet2's sizes (canvases of ~10^4 pixels per band) the hand-offs cost more than
    the extra threads bring: on small machines one thread iterates faster at the same compile
    time (figures in docs/performance.md, Threads).
    To use many cores for many fits, run one process per core, each with one thread. Large
    frames on machines with many cores may prefer more threads: measure.

    JAX makes its CPU client once per process, sizing the pool from the ``PJRT_NPROC``
    environment variable; this sets that variable, so call it before the first JAX computation
    (or set ``PJRT_NPROC`` yourself). The ``scarlet2`` command line calls it (``--threads``).

    Parameters
    ----------
    n
        Threads (>= 1), or None for XLA's default (one per core).

    Returns
    -------
    The previous setting (None if it was XLA's default or not a number).

    Raises
    ------
    RuntimeError
        If JAX's backends were already started with another setting (the pool cannot change).
    ValueError
        If ``n`` is not a positive integer or None.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_cpu_threads: give a positive number of threads or None, not {n!r}")
    previous = os.environ.get("PJRT_NPROC")
    wanted = None if n is None else str(n)
    started = _backends_started()
    if wanted != previous and started is None:
        import warnings

        warnings.warn(
            "set_cpu_threads: cannot tell whether JAX has started (its internals moved); the setting "
            "applies only if no JAX computation has run yet in this process",
            RuntimeWarning,
            stacklevel=2,
        )
    elif wanted != previous and started:
        raise RuntimeError(
            f"set_cpu_threads({n}): JAX's CPU client already runs with PJRT_NPROC={previous or 'unset'} "
            "(it is made once per process); call set_cpu_threads before the first JAX computation, "
            f"or start Python with PJRT_NPROC={n or ''} in the environment"
        )
    if wanted is None:
        os.environ.pop("PJRT_NPROC", None)
    else:
        os.environ["PJRT_NPROC"] = wanted
    return int(previous) if previous is not None and previous.isdigit() else None


def _backends_started() -> bool | None:
    """Whether JAX has made its backends (None if this JAX version does not say)."""
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # pragma: no cover - depends on JAX's internals
        return None
