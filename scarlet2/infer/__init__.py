"""Inference: the packed parameter vector, the objective, MAP fits, uncertainties, detection
and initialization.

Imports :mod:`scarlet2.render`, :mod:`scarlet2.model` and :mod:`scarlet2.ops`.
"""
