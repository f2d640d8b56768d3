"""Scenes as plain arrays plus a JSON description of their structure; no pickle.

Every equinox Module and constraint is written as a registered type name and its fields; arrays
go to a flat dict of named arrays. Reading builds only the types in :data:`SCENE_TYPES` and the
distributions in :data:`PRIOR_TYPES`, looked up by name in those tables (never imported by a
path the store names), with exactly the fields each type declares: a stored scene from a
colleague or a bucket cannot run code. Stores written before the layered layout (dotted class
paths such as ``scarlet2.morphology.Sersic``) are read through :data:`LEGACY_PATHS`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import StoreError
from ..model import constraints, morphology, psf, source
from ..model.frame import Frame
from ..model.parameter import Parameter
from ..model.scene import Scene

FORMAT = "scarlet2-scene/2"
#: Formats this version reads: /1 named classes by their module path.
READABLE_FORMATS = ("scarlet2-scene/1", FORMAT)
#: Longest FITS header (characters) a stored WCS may have.
MAX_HEADER_CHARS = 1_000_000


@functools.cache
def _scene_types() -> dict[str, type]:
    classes = [
        Scene,
        Frame,
        source.Source,
        source.PointSource,
        source.Component,
        source.Background,
        Parameter,
        morphology.Sersic,
        morphology.Spergel,
        morphology.Gaussian,
        morphology.Point,
        morphology.ArrayMorphology,
        psf.GaussianPSF,
        psf.MoffatPSF,
        psf.ArrayPSF,
        constraints.Real,
        constraints.Positive,
        constraints.Interval,
        constraints.Simplex,
        constraints.UnitDisk,
    ]
    return {c.__name__: c for c in classes}


#: The types a stored scene may contain, by the name written for them.
SCENE_TYPES = _scene_types()

#: numpyro distributions a stored prior may be (by class name), built from their arguments.
PRIOR_TYPES = (
    "Beta",
    "Cauchy",
    "Dirichlet",
    "Exponential",
    "Gamma",
    "HalfCauchy",
    "HalfNormal",
    "Laplace",
    "LogNormal",
    "LogUniform",
    "Normal",
    "StudentT",
    "Uniform",
)

#: Module paths of scarlet2 0.1.0 stores (format /1), before the layered layout.
LEGACY_PATHS = {
    f"scarlet2.{module}.{name}": name
    for module, names in {
        "scene": ["Scene"],
        "frame": ["Frame"],
        "source": ["Source", "PointSource", "Component", "Background"],
        "parameter": ["Parameter"],
        "morphology": ["Sersic", "Spergel", "Gaussian", "Point", "ArrayMorphology"],
        "psf": ["GaussianPSF", "MoffatPSF", "ArrayPSF"],
        "constraints": ["Real", "Positive", "Interval", "Simplex", "UnitDisk"],
    }.items()
    for name in names
}


def scene_to_json(scene) -> tuple[str, dict[str, np.ndarray]]:
    """(JSON structure, arrays) for a scene (or any pytree of registered scarlet2 types)."""
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
        name = type(x).__name__
        if SCENE_TYPES.get(name) is type(x):
            return {"__class__": name, "fields": {f.name: enc(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        if name in PRIOR_TYPES and type(x).__module__.startswith("numpyro.distributions"):
            return {"__dist__": name, "args": {k: enc(getattr(x, k)) for k in x.arg_constraints}}
        if name == "Independent" and type(x).__module__.startswith("numpyro.distributions"):  # .to_event(n)
            return {"__dist__": name, "base": enc(x.base_dist), "event_ndims": int(x.reinterpreted_batch_ndims)}
        raise TypeError(f"cannot store a {type(x).__module__}.{type(x).__qualname__} in a scene")

    structure = {"format": FORMAT, "scene": enc(scene)}
    return json.dumps(structure), arrays


def scene_from_json(text: str, arrays: Mapping[str, np.ndarray], where: str = "stored scene") -> object:
    """Rebuild a scene written by :func:`scene_to_json` (``arrays``: name -> array).

    Raises
    ------
    StoreError
        Naming ``where`` and the entry: an unknown format, a type or distribution that is not
        registered, fields that are not the type's own, a missing array, a malformed entry.
    """
    try:
        structure = json.loads(text)
    except (json.JSONDecodeError, RecursionError, TypeError) as err:
        raise StoreError(f"{where}: the scene structure is not valid JSON ({err})") from None
    fmt = structure.get("format") if isinstance(structure, dict) else None
    if fmt not in READABLE_FORMATS:
        raise StoreError(f"{where}: not a scarlet2 scene (format {fmt!r}, expected one of {READABLE_FORMATS})")

    def dec(x, path):
        if isinstance(x, list):
            return [dec(v, f"{path}[{i}]") for i, v in enumerate(x)]
        if x is None or isinstance(x, bool | int | float | str):
            return x
        if not isinstance(x, dict):
            raise StoreError(f"{where}: entry {path} is not a scene value ({type(x).__name__})")
        if "__array__" in x:
            key = x["__array__"]
            if not isinstance(key, str) or key not in arrays:
                raise StoreError(f"{where}: array {key!r} of entry {path} is missing from the store")
            a = np.asarray(arrays[key])
            return jnp.asarray(a) if a.dtype.kind in "fiub" else a
        if "__tuple__" in x:
            return tuple(dec(v, f"{path}[{i}]") for i, v in enumerate(_list(x["__tuple__"], path)))
        if "__wcs__" in x:
            return _wcs(x["__wcs__"], path)
        if "__dist__" in x:
            return _distribution(x, path, dec)
        if "__class__" in x:
            cls = _scene_type(x["__class__"], path)
            fields = x.get("fields")
            expected = {f.name for f in dataclasses.fields(cls)}
            optional = {f.name for f in dataclasses.fields(cls) if f.default is None}  # newer fields
            if not isinstance(fields, dict) or not (expected - optional <= set(fields) <= expected):
                got = sorted(fields) if isinstance(fields, dict) else type(fields).__name__
                raise StoreError(
                    f"{where}: entry {path} ({cls.__name__}) has fields {got}, expected {sorted(expected)}"
                )
            obj = object.__new__(cls)  # no __init__: no registration with an active scene
            for k in expected - set(fields):
                object.__setattr__(obj, k, None)
            for k, v in fields.items():
                object.__setattr__(obj, k, dec(v, f"{path}.{k}"))
            return obj
        raise StoreError(f"{where}: unrecognised scene entry {path} with keys {sorted(x)[:5]}")

    def _list(v, path):
        if not isinstance(v, list):
            raise StoreError(f"{where}: entry {path} should be a list, got {type(v).__name__}")
        return v

    def _scene_type(name, path):
        key = LEGACY_PATHS.get(name, name) if fmt == READABLE_FORMATS[0] else name
        cls = SCENE_TYPES.get(key) if isinstance(key, str) else None
        if cls is None:
            raise StoreError(
                f"{where}: refusing to build {name!r} (entry {path}): not a type a scene may contain "
                f"({', '.join(sorted(SCENE_TYPES))})"
            )
        return cls

    def _wcs(header, path):
        from astropy.io import fits
        from astropy.wcs import WCS

        if not isinstance(header, str) or len(header) > MAX_HEADER_CHARS:
            raise StoreError(f"{where}: entry {path} is not a FITS header of at most {MAX_HEADER_CHARS} characters")
        try:
            return WCS(fits.Header.fromstring(header, sep="\n")).celestial
        except Exception as err:  # astropy raises several types for bad headers
            raise StoreError(f"{where}: entry {path}: unparsable WCS header ({err})") from None

    def _distribution(x, path, dec):
        import numpyro.distributions as nd

        name = x["__dist__"]
        if name == "Independent":
            base, ndims = dec(x.get("base"), f"{path}.base"), x.get("event_ndims")
            if not isinstance(base, nd.Distribution) or not isinstance(ndims, int) or not 0 <= ndims <= 8:
                raise StoreError(f"{where}: entry {path} (Independent) needs a stored prior and 0..8 event dims")
            try:
                return base.to_event(ndims)
            except ValueError as err:
                raise StoreError(f"{where}: entry {path} (Independent): {err}") from None
        if fmt == READABLE_FORMATS[0]:  # format /1 wrote the class's module path
            legacy = {f"{getattr(nd, n).__module__}.{n}": n for n in PRIOR_TYPES}
            short = legacy.get(name) if isinstance(name, str) else None
        else:
            short = name
        if not isinstance(short, str) or short not in PRIOR_TYPES:
            raise StoreError(
                f"{where}: refusing to build prior {name!r} (entry {path}): not one of {', '.join(PRIOR_TYPES)}"
            )
        cls = getattr(nd, short)
        args = x.get("args")
        if not isinstance(args, dict) or not set(args) <= set(cls.arg_constraints):
            raise StoreError(f"{where}: entry {path} ({short}) has arguments outside {sorted(cls.arg_constraints)}")
        values = {k: dec(v, f"{path}.{k}") for k, v in args.items()}
        if not all(isinstance(v, int | float | jax.Array | np.ndarray) for v in values.values()):
            raise StoreError(f"{where}: entry {path} ({short}): arguments must be numbers or arrays")
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise StoreError(f"{where}: entry {path} ({short}): {err}") from None

    try:
        return dec(structure.get("scene"), "scene")
    except RecursionError:
        raise StoreError(f"{where}: the scene structure is nested too deeply") from None


__all__ = ["FORMAT", "PRIOR_TYPES", "SCENE_TYPES", "scene_from_json", "scene_to_json"]
