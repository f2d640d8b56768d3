"""Scene -> pixels: the canvas layout, the scene rendered into its canvas, the canvas seen by
each observation (difference kernel, convolution), and box diagnostics.

Imports :mod:`scarlet2.model` and :mod:`scarlet2.ops`.
"""
