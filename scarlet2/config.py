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
