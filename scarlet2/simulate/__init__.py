"""Simulated data with known truth: blends on one grid (:mod:`.blend`, rendered by scarlet2) and
pairs of instruments on different grids drawn by GalSim (:mod:`.multires`, needs the optional
``galsim`` extra)."""

from .blend import BANDS, SimulatedBlend, simulate_blend, source_fluxes
from .multires import SimulatedPair, simulate_pair

__all__ = ["BANDS", "SimulatedBlend", "SimulatedPair", "simulate_blend", "simulate_pair", "source_fluxes"]
