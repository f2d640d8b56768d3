"""The pure numerical layer: plain functions on arrays, no scarlet2 types.

Fourier transforms of profiles and their tables (FFTLog), fast FFT sizes, the paste kernel and
the compiled-entry-point helpers. Every other layer builds on this one; it imports none of them.
"""
