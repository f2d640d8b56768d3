"""scarlet2: astronomical source modeling and deblending with JAX and xarray."""

__version__ = "0.1.0"

from .constraints import Interval, Positive, Real, Simplex, UnitDisk
from .fitting import FitInfo, fit, log_likelihood, render
from .frame import Frame
from .morphology import ArrayMorphology, Gaussian, Point, Sersic, Spergel, sersic_bn
from .observation import Observation
from .parameter import Parameter, free_parameters, parameters
from .render import render_source
from .psf import ArrayPSF, GaussianPSF, MoffatPSF
from .scene import Scene
from .source import Background, Component, PointSource, Source
from .uncertainty import uncertainties

# the xarray layer (registers the .scarlet accessors on import)
from . import accessor as _accessor  # noqa: E402,F401
from .dataset import SchemaError, from_arrays, from_fits, get_wcs, to_observation, validate  # noqa: E402
from .io import load_scene, open_dataset, open_result, save_scene, write_zarr  # noqa: E402
from .results import detect, fit_dataset  # noqa: E402


__all__ = [
    "ArrayMorphology",
    "Background",
    "ArrayPSF",
    "Component",
    "FitInfo",
    "Frame",
    "Gaussian",
    "GaussianPSF",
    "Interval",
    "MoffatPSF",
    "Observation",
    "Parameter",
    "Point",
    "PointSource",
    "Positive",
    "Real",
    "SchemaError",
    "Scene",
    "Sersic",
    "Simplex",
    "Source",
    "Spergel",
    "UnitDisk",
    "detect",
    "fit",
    "fit_dataset",
    "from_arrays",
    "from_fits",
    "get_wcs",
    "load_scene",
    "open_dataset",
    "open_result",
    "free_parameters",
    "log_likelihood",
    "parameters",
    "render",
    "render_source",
    "save_scene",
    "sersic_bn",
    "to_observation",
    "uncertainties",
    "validate",
    "write_zarr",
]
