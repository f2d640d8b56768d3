"""Simulated data with known truth: blends on one grid (:mod:`.blend`, rendered by scarlet2) and
pairs of instruments on different grids (:mod:`.multires`) and survey fields (:mod:`.field`),
drawn by GalSim (the optional ``galsim`` extra)."""

from .blend import BANDS, SimulatedBlend, simulate_blend, source_fluxes
from .field import SimulatedField, simulate_field
from .multires import SimulatedPair, simulate_pair

__all__ = [
    "BANDS",
    "SimulatedBlend",
    "SimulatedField",
    "SimulatedPair",
    "simulate_blend",
    "simulate_field",
    "simulate_pair",
    "source_fluxes",
]
