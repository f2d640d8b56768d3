"""scarlet2: astronomical source modeling and deblending with JAX and xarray."""

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

__version__ = "0.1.0"

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
    "Scene",
    "Sersic",
    "Simplex",
    "Source",
    "Spergel",
    "UnitDisk",
    "fit",
    "free_parameters",
    "log_likelihood",
    "parameters",
    "render",
    "render_source",
    "sersic_bn",
    "uncertainties",
]
