"""scarlet2: astronomical source modeling and deblending with JAX and xarray.

The package is built in layers, each importing only those below it (docs/architecture.md):
:mod:`~scarlet2.ops` (numerics on arrays) < :mod:`~scarlet2.model` (what a scene is made of)
< :mod:`~scarlet2.render` (scene -> pixels) < :mod:`~scarlet2.infer` (fits, errors,
initialization) < :mod:`~scarlet2.labeled` (the xarray face) < :mod:`~scarlet2.survey`
(mosaics region by region) < the accessors, command line, demo and simulator. The public names are re-exported here.
"""

from . import accessors as _accessors  # registers the .scarlet accessors
from . import simulate, survey
from ._version import __version__
from .config import enable_compilation_cache, set_cpu_threads
from .demo import demo_store
from .errors import InputError, ScarletError, SchemaError, StoreError
from .infer.detection import detect_peaks
from .infer.initialization import initialize
from .infer.objective import log_likelihood
from .infer.optimize import FitInfo, fit
from .infer.sample import DivergenceWarning
from .infer.uncertainty import uncertainties
from .labeled.fits import from_fits
from .labeled.posterior import posterior_observations, sample, summary
from .labeled.predictive import colors, predictive, residual_chi2, total_flux
from .labeled.results import detect, fit_dataset
from .labeled.schema import from_arrays, get_wcs, to_observation, validate
from .labeled.store import load_scene, open_dataset, save_scene, write_zarr
from .model.constraints import Interval, Positive, Real, Simplex, UnitDisk
from .model.frame import Frame
from .model.morphology import ArrayMorphology, Gaussian, Point, Sersic, Spergel
from .model.observation import Observation
from .model.parameter import Parameter, free_parameters, parameter_names, parameters, with_free
from .model.psf import ArrayPSF, GaussianPSF, MoffatPSF
from .model.scene import Scene
from .model.source import Background, Component, PointSource, Source
from .ops.profiles import sersic_bn
from .render.boxes import BoxLeakageWarning, box_leakage, grow_boxes
from .render.canvas import render_source
from .render.observe import render
from .survey.output import open_result

del _accessors

__all__ = [
    "ArrayMorphology",
    "ArrayPSF",
    "Background",
    "BoxLeakageWarning",
    "DivergenceWarning",
    "Component",
    "FitInfo",
    "Frame",
    "Gaussian",
    "GaussianPSF",
    "InputError",
    "Interval",
    "MoffatPSF",
    "Observation",
    "Parameter",
    "Point",
    "PointSource",
    "Positive",
    "Real",
    "ScarletError",
    "SchemaError",
    "Scene",
    "Sersic",
    "Simplex",
    "Source",
    "Spergel",
    "StoreError",
    "UnitDisk",
    "__version__",
    "box_leakage",
    "detect",
    "demo_store",
    "detect_peaks",
    "enable_compilation_cache",
    "fit",
    "fit_dataset",
    "sample",
    "summary",
    "predictive",
    "residual_chi2",
    "colors",
    "total_flux",
    "posterior_observations",
    "free_parameters",
    "from_arrays",
    "from_fits",
    "get_wcs",
    "grow_boxes",
    "initialize",
    "load_scene",
    "log_likelihood",
    "open_dataset",
    "open_result",
    "parameter_names",
    "parameters",
    "render",
    "render_source",
    "save_scene",
    "sersic_bn",
    "set_cpu_threads",
    "simulate",
    "survey",
    "to_observation",
    "uncertainties",
    "validate",
    "with_free",
    "write_zarr",
]
