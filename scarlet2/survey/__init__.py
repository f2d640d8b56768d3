"""Survey-scale processing: a mosaic deblended region by region on dask.distributed, written
to a resumable Zarr store (:func:`run`; layout in :mod:`.output`, regions in :mod:`.regions`,
one region's work in :mod:`.kernel`). It imports only from the layers below it
(docs/architecture.md).

Unlike the other layers' packages this one re-exports its entry point, ``scarlet2.survey.run``,
which is how users call it.
"""

from .driver import SurveySummary, run

__all__ = ["SurveySummary", "run"]
