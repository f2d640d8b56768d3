"""scarlet2: astronomical source modeling and deblending with JAX and xarray."""

__version__ = "0.1.0"

# the xarray layer (registers the .scarlet accessors on import)
from . import accessor as _accessor  # noqa: E402,F401
from . import simulate  # noqa: E402
from .config import enable_compilation_cache, set_cpu_threads
from .constraints import Interval, Positive, Real, Simplex, UnitDisk
from .dataset import SchemaError, from_arrays, from_fits, get_wcs, to_observation, validate  # noqa: E402
from .fitting import FitInfo, fit, log_likelihood, render
from .frame import Frame
from .init import initialize  # noqa: E402
from .io import load_scene, open_dataset, open_result, save_scene, write_zarr  # noqa: E402
from .morphology import ArrayMorphology, Gaussian, Point, Sersic, Spergel, sersic_bn
from .observation import Observation
from .parameter import Parameter, free_parameters, parameters
from .psf import ArrayPSF, GaussianPSF, MoffatPSF
from .rendering import BoxLeakageWarning, box_leakage, grow_boxes, render_source
from .results import detect, fit_dataset  # noqa: E402
from .scene import Scene
from .source import Background, Component, PointSource, Source
from .uncertainty import uncertainties

__all__ = [
    "ArrayMorphology",
    "Background",
    "ArrayPSF",
    "BoxLeakageWarning",
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
    "box_leakage",
    "detect",
    "enable_compilation_cache",
    "fit",
    "fit_dataset",
    "from_arrays",
    "from_fits",
    "get_wcs",
    "grow_boxes",
    "initialize",
    "load_scene",
    "open_dataset",
    "open_result",
    "free_parameters",
    "log_likelihood",
    "parameters",
    "render",
    "render_source",
    "save_scene",
    "simulate",
    "sersic_bn",
    "set_cpu_threads",
    "to_observation",
    "uncertainties",
    "validate",
    "write_zarr",
]
