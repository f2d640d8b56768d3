"""What a scene is made of: constraints, parameters, PSFs, morphologies, sources, the scene and
its ``with`` context, the frame, and observations with the one set of input checks.

Imports only :mod:`scarlet2.ops` (and :mod:`scarlet2.errors`).
"""
