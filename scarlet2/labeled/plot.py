"""Figures: RGB composites (astropy ``make_lupton_rgb``) of data, model and residual on WCSAxes."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError
from .schema import get_wcs


def _rgb_bands(bands):
    """Indices of three bands for (R, G, B): reddest to bluest of the available ones."""
    n = len(bands)
    if n >= 3:
        return [min(n - 1, n // 2 + 1), n // 2, max(0, n // 2 - 1)] if n < 5 else [3, 2, 1]
    return [0] * 3 if n == 1 else [1, 1, 0]


def rgb(cube, bands, stretch=None, Q=8, minimum=None):
    """Lupton RGB image (y, x, 3) of a (band, y, x) cube."""
    from astropy.visualization import make_lupton_rgb

    cube = np.nan_to_num(np.asarray(cube, np.float64))
    r, g, b = (cube[i] for i in _rgb_bands(bands))
    stretch = stretch or max(np.percentile(cube, 99.5), 1e-12) / 2
    return make_lupton_rgb(r, g, b, stretch=stretch, Q=Q, minimum=0 if minimum is None else minimum)


def plot_result(result, path=None, markers=True, figsize=None, limit: float = 5.0, observation=None):
    """Data, model and residual RGB panels with source markers, and below them each band's
    residual in units of its noise, (data - model) / sigma, on one colour scale of +-``limit``.
    Axes are RA/Dec where the result has a WCS, pixels otherwise; saved to ``path`` if given.

    A joint fit's result (``/model/<name>`` per observation) gives one figure per observation,
    or the one named by ``observation``; with ``path`` ``fit.png`` they are saved as
    ``fit_<name>.png``, and a dict name -> figure is returned.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    groups = dict(result["model"].children) if hasattr(result["model"], "children") else {}
    if groups and "model" not in result["model"].data_vars:
        names = [observation] if observation is not None else list(groups)
        missing = [n for n in names if n not in groups]
        if missing:
            raise InputError(f"no observation {missing[0]!r} in this result; it has {list(groups)}")
        out = {}
        for name in names:
            sub = xr.DataTree.from_dict({"/": result.to_dataset(), "model": groups[name].to_dataset(),
                                         "catalog": result["catalog"].to_dataset()})  # fmt: skip
            target = None if path is None else _suffixed(path, name)
            out[name] = plot_result(sub, target, markers, figsize, limit)
            out[name].suptitle(f"{name}: chi^2/dof = {groups[name].attrs.get('chi2_dof', float('nan')):.3f}")
            if target is not None:
                out[name].savefig(target, dpi=110, bbox_inches="tight")
                plt.close(out[name])
        return out
    cube = result["model"].to_dataset() if hasattr(result["model"], "to_dataset") else result["model"]
    wcs = get_wcs(cube)
    bands = [str(b) for b in cube["band"].values]
    data, model = cube["data"].values, cube["model"].values
    weight = cube["weight"].values
    stretch = max(np.nanpercentile(data, 99.5), 1e-12) / 2
    resid = np.nan_to_num(data - model)
    noise = 1 / np.sqrt(np.where(weight > 0, weight, np.inf))
    panels = [
        ("data", rgb(data, bands, stretch)),
        ("model", rgb(model, bands, stretch)),
        # residuals: offset by 3 sigma and stretched in noise units, so +-3 sigma is visible
        (
            "residual (+3 sigma offset)",
            rgb(resid + 3 * noise, bands, 3 * float(np.nanmedian(noise[np.isfinite(noise)]))),
        ),
    ]
    nb = len(bands)
    cols = max(3, nb)
    fig = plt.figure(figsize=figsize or (4.2 * 3, 4.4 + 8.4 / max(nb, 3) + 0.6))
    grid = fig.add_gridspec(2, 3 * cols, height_ratios=[3 * cols / 3, 3 * cols / max(nb, 3)], hspace=0.3)
    cat = result["catalog"] if "catalog" in result.children else None
    width = 3 * cols // 3
    for k, (title, img) in enumerate(panels):
        spec = grid[0, k * width : (k + 1) * width]
        ax = fig.add_subplot(spec, projection=wcs) if wcs is not None else fig.add_subplot(spec)
        ax.imshow(img, origin="lower")
        ax.set_title(title)
        _label_axes(ax, wcs, first=k == 0)
        if markers and cat is not None and cat.sizes.get("source", 0):
            xs, ys = _marker_pixels(cat, wcs)
            ax.plot(xs, ys, "+", color="cyan", ms=8, mew=1.2)
            for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
                ax.text(x + 1.5, y + 1.5, str(i), color="cyan", fontsize=8)
    chi = np.where(weight > 0, (data - model) * np.sqrt(np.where(weight > 0, weight, 0)), np.nan)
    width = 3 * cols // nb
    for b, band in enumerate(bands):
        ax = fig.add_subplot(grid[1, b * width : (b + 1) * width])
        shown = ax.imshow(chi[b], origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(band, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(shown, ax=fig.axes[len(panels) :], orientation="horizontal", fraction=0.05, pad=0.04)
    bar.set_label("(data - model) / sigma, per band")
    chi2 = result.attrs.get("chi2_dof")
    if chi2 is not None:
        fig.suptitle(f"scarlet2 fit: chi^2/dof = {chi2:.3f}")
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return fig


def _marker_pixels(cat, wcs):
    """Catalog positions in the plotted cube's pixels: through ra/dec where both are known (a
    joint fit's catalog is on the frame's grid, not each observation's)."""
    if wcs is not None and "ra" in cat:
        from astropy.coordinates import SkyCoord

        x, y = wcs.world_to_pixel(SkyCoord(cat["ra"].values, cat["dec"].values, unit="deg"))
        return np.atleast_1d(x), np.atleast_1d(y)
    return cat["x"].values, cat["y"].values


def _suffixed(path, name):
    from pathlib import Path

    p = Path(path)
    return p.with_name(f"{p.stem}_{name.replace('/', '_')}{p.suffix}")


def _label_axes(ax, wcs, first: bool) -> None:
    if wcs is not None:
        ax.coords[0].set_axislabel("RA")
        ax.coords[1].set_axislabel("Dec" if first else " ")
        ax.coords[1].set_ticklabel_visible(first)
    else:
        ax.set_xlabel("x [pixel]")
        ax.set_ylabel("y [pixel]" if first else "")
        if not first:
            ax.set_yticklabels([])


def plot_observation(ds, path=None, catalog=None):
    """RGB of an observation Dataset (with optional catalog markers)."""
    import matplotlib.pyplot as plt

    wcs = get_wcs(ds)
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(1, 1, 1, projection=wcs) if wcs is not None else fig.add_subplot(1, 1, 1)
    ax.imshow(rgb(ds["image"].values, [str(b) for b in ds["band"].values]), origin="lower")
    _label_axes(ax, wcs, first=True)
    if catalog is not None:
        ax.plot(catalog["x"].values, catalog["y"].values, "+", color="cyan")
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
