"""Simulated data with known truth: blends on one grid rendered by scarlet2 (:mod:`.blend`: speed
and self-consistency only) and, drawn by GalSim (the optional ``sim`` extra), blends for accuracy
(:mod:`.galsim_blend`), pairs of instruments on different grids (:mod:`.multires`) and survey
fields (:mod:`.field`)."""

from .blend import BANDS, SimulatedBlend, simulate_blend, source_fluxes
from .field import SimulatedField, simulate_field
from .galsim_blend import GalsimBlend, simulate_galsim_blend
from .multires import SimulatedPair, simulate_pair

__all__ = [
    "BANDS",
    "GalsimBlend",
    "SimulatedBlend",
    "SimulatedField",
    "SimulatedPair",
    "simulate_blend",
    "simulate_field",
    "simulate_galsim_blend",
    "simulate_pair",
    "source_fluxes",
]
