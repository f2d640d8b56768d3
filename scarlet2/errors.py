"""The exceptions scarlet2 raises, one hierarchy (docs/errors.md).

Each subclasses :class:`ScarletError` and the builtin a user would catch anyway, so existing
``except ValueError`` code keeps working and ``except scarlet2.ScarletError`` catches them all.
"""

from __future__ import annotations


class ScarletError(Exception):
    """Base class of scarlet2's own errors."""


class InputError(ScarletError, ValueError):
    """An argument has the wrong shape, type or value (names the argument and what is wrong)."""


class SchemaError(InputError):
    """Observation data break the observation rules: the Dataset schema (:func:`scarlet2.validate`)
    and :class:`scarlet2.Observation` share them (names the variable or argument and the band)."""


class StoreError(ScarletError, ValueError):
    """A Zarr store (or a scene in it) is unreadable, incomplete or names something scarlet2
    refuses to build (names the store and the entry)."""
