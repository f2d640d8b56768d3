"""Scenes as plain arrays plus a JSON description of their structure; no pickle.

Every equinox Module and constraint is written as its class path and fields; arrays go to a flat
dict of named arrays. Reading imports classes only from scarlet2 and numpyro.distributions, so a
stored scene cannot run arbitrary code.
"""

from __future__ import annotations

import dataclasses
import importlib
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "scarlet2-scene/1"
ALLOWED_MODULES = ("scarlet2.", "numpyro.distributions")


def scene_to_json(scene) -> tuple[str, dict[str, np.ndarray]]:
    """(JSON structure, arrays) for a scene (or any scarlet2 pytree)."""
    arrays: dict[str, np.ndarray] = {}

    def enc(x):
        if x is None or isinstance(x, bool | int | float | str):
            return x
        if isinstance(x, jax.Array | np.ndarray | np.generic):
            key = f"a{len(arrays)}"
            arrays[key] = np.asarray(x)
            return {"__array__": key}
        if isinstance(x, tuple | list):
            return {"__tuple__": [enc(v) for v in x]} if isinstance(x, tuple) else [enc(v) for v in x]
        if hasattr(x, "to_header") and hasattr(x, "wcs"):  # astropy WCS
            return {"__wcs__": x.to_header(relax=True).tostring(sep="\n")}
        cls = type(x)
        path = f"{cls.__module__}.{cls.__qualname__}"
        if isinstance(x, eqx.Module) or dataclasses.is_dataclass(x):
            return {"__class__": path, "fields": {f.name: enc(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        if hasattr(x, "arg_constraints"):  # numpyro distribution: its constructor arguments
            return {"__dist__": path, "args": {k: enc(getattr(x, k)) for k in x.arg_constraints}}
        raise TypeError(f"cannot serialize {path} in a scene")

    structure = {"format": FORMAT, "scene": enc(scene)}
    return json.dumps(structure), arrays


def scene_from_json(text: str, arrays) -> object:
    """Rebuild a scene written by :func:`scene_to_json` (arrays: mapping name -> array)."""
    structure = json.loads(text)
    if structure.get("format") != FORMAT:
        raise ValueError(f"not a scarlet2 scene (format {structure.get('format')!r}, expected {FORMAT!r})")

    def dec(x):
        if isinstance(x, list):
            return [dec(v) for v in x]
        if not isinstance(x, dict):
            return x
        if "__array__" in x:
            if x["__array__"] not in arrays:
                raise KeyError(f"scene array {x['__array__']!r} missing from the store")
            a = np.asarray(arrays[x["__array__"]])
            return jnp.asarray(a) if a.dtype.kind in "fiub" else a
        if "__tuple__" in x:
            return tuple(dec(v) for v in x["__tuple__"])
        if "__wcs__" in x:
            from astropy.io import fits
            from astropy.wcs import WCS

            return WCS(fits.Header.fromstring(x["__wcs__"], sep="\n")).celestial
        if "__dist__" in x:
            return _import(x["__dist__"])(**{k: dec(v) for k, v in x["args"].items()})
        if "__class__" in x:
            cls = _import(x["__class__"])
            obj = object.__new__(cls)  # no __init__: no registration, no re-initialization
            for k, v in x["fields"].items():
                object.__setattr__(obj, k, dec(v))
            return obj
        raise ValueError(f"unrecognised scene entry {sorted(x)}")

    return dec(structure["scene"])


def _import(path: str):
    if not path.startswith(ALLOWED_MODULES):
        raise ValueError(f"refusing to import {path!r} from a stored scene (allowed: {ALLOWED_MODULES})")
    module, _, name = path.rpartition(".")
    obj = importlib.import_module(module)
    return getattr(obj, name)
