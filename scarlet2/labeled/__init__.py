"""The xarray face: the observation schema, FITS input, Zarr stores and scene serialization,
result DataTrees and catalogs, the ``.scarlet`` accessors and plots.

Imports every layer below it (:mod:`scarlet2.infer` and down); nothing below imports it.
"""
