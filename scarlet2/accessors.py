"""The ``.scarlet`` accessors: stateless, each method one call into the library.

They sit above every layer they call (the xarray face and the survey driver), so nothing in
the library imports them; ``import scarlet2`` registers them."""

from __future__ import annotations

import xarray as xr

from .labeled import plot, posterior, predictive, results, schema
from .labeled.store import scene_from_dataset
from .survey import driver


@xr.register_dataset_accessor("scarlet")
class ScarletDatasetAccessor:
    """``ds.scarlet``: observation Datasets (see :mod:`scarlet2.labeled.schema`)."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def wcs(self):
        """The astropy WCS, parsed from the ``wcs`` coordinate on each access."""
        return schema.get_wcs(self._ds)

    def validate(self):
        return schema.validate(self._ds)

    def observation(self):
        return schema.to_observation(self._ds)

    def detect(self, **kwargs) -> xr.Dataset:
        return results.detect(self._ds, **kwargs)

    def fit(self, catalog=None, model="parametric", **fit_options) -> xr.DataTree:
        return results.fit_dataset(self._ds, catalog=catalog, model=model, **fit_options)

    def render(self, scene) -> xr.DataArray:
        return results.render_dataarray(self._ds, scene)

    def plot(self, path=None, catalog=None):
        return plot.plot_observation(self._ds, path=path, catalog=catalog)

    def survey(self, out, tile=256, **options):
        """Deblend this mosaic region by region into ``out`` (:func:`scarlet2.survey.run`)."""
        return driver.run(self._ds, out, tile=tile, **options)


@xr.register_datatree_accessor("scarlet")
class ScarletResultAccessor:
    """``tree.scarlet``: fit results (DataTree with /model, /catalog, /fit, /scene), posterior
    trees (/posterior, /sample_stats, ...) and trees of observation Datasets to fit jointly."""

    def __init__(self, tree: xr.DataTree):
        self._tree = tree

    def fit(self, catalog=None, model="parametric", **fit_options) -> xr.DataTree:
        """Fit the observations in this tree's nodes jointly (:func:`scarlet2.fit_dataset`)."""
        return results.fit_dataset(self._tree, catalog=catalog, model=model, **fit_options)

    def scene(self):
        """The fitted scene, rebuilt from its arrays and JSON structure (no pickle)."""
        return scene_from_dataset(self._tree["scene"].to_dataset())

    def sample(self, num_chains=4, num_warmup=500, num_samples=1000, seed=0, **options) -> xr.DataTree:
        """Posterior draws around this fit result's scene (:func:`scarlet2.sample`)."""
        return results.sample_result(self._tree, num_chains, num_warmup, num_samples, seed, **options)

    def summary(self, var_names=None, interval=0.9):
        """A posterior tree's table of means, sds, intervals, R-hat and ESS (:func:`scarlet2.summary`)."""
        return posterior.summary(self._tree, var_names, interval)

    def predictive(self, observation=None, **options) -> xr.DataArray:
        """A posterior tree's lazy model cube (chain, draw, band, y, x) (:func:`scarlet2.predictive`)."""
        return predictive.predictive(self._tree, observation, **options)

    def residual_chi2(self, observation=None, **options) -> xr.DataArray:
        """chi^2 of each posterior draw against the data (chain, draw), lazy."""
        return predictive.residual_chi2(self._tree, observation, **options)

    def colors(self, blue, red) -> xr.DataArray:
        """Each posterior draw's colour ``blue - red`` per source, in magnitudes."""
        return predictive.colors(self._tree, blue, red)

    def total_flux(self) -> xr.DataArray:
        """Each posterior draw's flux summed over bands, per source."""
        return predictive.total_flux(self._tree)

    @property
    def catalog(self) -> xr.Dataset:
        return self._tree["catalog"].to_dataset()

    def plot(self, path=None, **kwargs):
        return plot.plot_result(self._tree, path=path, **kwargs)
