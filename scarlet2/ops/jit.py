"""Jitted entry points compiled with per-backend XLA options."""

from __future__ import annotations

import re
from collections.abc import Callable

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, ArrayLike, DTypeLike

#: XLA options for scarlet2's compiled programs (fit chunks, renders, chi^2, Fisher matrices),
#: per backend. On CPU, optimisation level 1 and the classic fusion emitters compile about twice
#: as fast as the defaults at the same run time, and without YNNPACK fusions an iteration is
#: faster (their reductions compete with the FFTs for the cores): docs/performance.md, Compile
#: time. Edit the dict to override; a backend not listed gets XLA's defaults.
COMPILER_OPTIONS = {
    "cpu": {
        "xla_backend_optimization_level": 1,
        "xla_cpu_use_fusion_emitters": False,
        "xla_cpu_experimental_ynn_fusion_type": "",
    }
}

#: Overrides of :data:`COMPILER_OPTIONS` for programs that run many times per compilation (the
#: fit's chunks of optimizer steps): on CPU, optimisation level 2 iterates faster for the same
#: compile time (docs/performance.md). One-shot programs keep level 1.
ITERATIVE_COMPILER_OPTIONS = {"cpu": {"xla_backend_optimization_level": 2}}

_COMPILED = {}

#: Per backend, the options of :data:`COMPILER_OPTIONS` that this XLA build does not know (a
#: newer jaxlib dropped ``xla_cpu_use_fusion_emitters``): learnt at the first compilation that
#: names one, then left out.
_UNKNOWN: dict[str, set[str]] = {}


def compiler_options(backend: str, iterative: bool = False) -> dict:
    """The XLA options scarlet2 compiles with on ``backend``: :data:`COMPILER_OPTIONS`, updated
    with :data:`ITERATIVE_COMPILER_OPTIONS` for programs that iterate, less those this XLA
    build does not know."""
    options = dict(COMPILER_OPTIONS.get(backend, {}))
    if iterative:
        options.update(ITERATIVE_COMPILER_OPTIONS.get(backend, {}))
    for name in _UNKNOWN.get(backend, ()):
        options.pop(name, None)
    return options


def compiled(fn: Callable, backend: str, iterative: bool = False) -> Callable:
    """``fn`` under ``equinox.filter_jit`` with :func:`compiler_options` (one wrapper per
    function, backend and options, so its compilation cache is kept). An option the installed
    XLA refuses as unknown is dropped for the backend and the call compiled again without it."""

    def call(*args, **kwargs):
        while True:
            options = compiler_options(backend, iterative)
            key = (fn, backend, tuple(sorted(options.items())))
            if key not in _COMPILED:
                _COMPILED[key] = eqx.filter_jit(fn, compiler_options=dict(options))
            try:
                return _COMPILED[key](*args, **kwargs)
            except jax.errors.JaxRuntimeError as e:
                unknown = re.search(r"No such compile option: '([^']+)'", str(e))
                if unknown is None or unknown.group(1) not in options:
                    raise
                _UNKNOWN.setdefault(backend, set()).add(unknown.group(1))

    return call


def platform(array: Array) -> str:
    """The platform ("cpu", "gpu", "tpu") an array lives on."""
    return next(iter(array.devices())).platform


def to_device(x: ArrayLike, dtype: DTypeLike) -> Array:
    """``jnp.asarray(x, dtype)`` without compiling: host values are converted with numpy and
    copied with ``jax.device_put`` (``jnp.asarray`` of a host array, or a conversion on the
    device, compiles a small program for every new shape and dtype)."""
    if isinstance(x, jax.Array):
        return x if x.dtype == dtype else x.astype(dtype)
    try:
        host = np.asarray(x, dtype=dtype)
    except jax.errors.TracerArrayConversionError:  # e.g. a list of traced values
        return jax.numpy.asarray(x, dtype)
    return jax.device_put(host)


def to_devices(xs, dtypes) -> list:
    """:func:`to_device` of each of ``xs`` (with its dtype in ``dtypes``): host values copied in
    one batched ``jax.device_put`` (one call per value costs ~0.2 ms of host time each)."""
    out, host, at = [None] * len(xs), [], []
    for k, (x, dtype) in enumerate(zip(xs, dtypes, strict=True)):
        if isinstance(x, jax.Array):
            out[k] = to_device(x, dtype)
            continue
        try:
            host.append(np.asarray(x, dtype=dtype))
            at.append(k)
        except jax.errors.TracerArrayConversionError:
            out[k] = jax.numpy.asarray(x, dtype)
    for k, array in zip(at, jax.device_put(host) if host else [], strict=True):
        out[k] = array
    return out
