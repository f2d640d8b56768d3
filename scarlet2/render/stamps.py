"""Each component's observed image in a stamp of its own: its unit-flux box through the
difference kernel, on the observation's pixels.

Linear solves and Fisher blocks need every component's image through an observation. Rendering
the whole region once per component (or per packed set of them) costs a canvas FFT each; a
component's image is its box convolved with the kernel, which reaches ``Geometry.reach``
pixels, so a stamp of the box plus that reach on every side holds all of it. One compiled call
renders every box; the stamps' convolutions are small float64 FFTs on the host.

Only for observations on the frame's pixel grid (:class:`~.convolve.ObservationRenderer`); the
stamps equal the full render's per-component images up to the kernel's wings beyond the PSF
stamp's radius, which the canvas keeps: 0.4-2e-4 of a stamp's peak and of its flux on the
simulated survey and blend PSFs (docs/design.md).
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from ..model.scene import Scene
from ..ops.fourier import fast_size
from ..ops.jit import compiled, platform
from .canvas import _groups, group_boxes
from .convolve import ObservationRenderer

#: Stamps convolved per FFT call in :func:`convolve_stamps`: bounds its scratch memory (~40 MB
#: for 5 bands and 45 px boxes with a 20 px reach) whatever the number of stamps.
STAMP_BATCH = 32


def has_stamps(renderer) -> bool:
    """Whether ``renderer``'s components can be rendered as stamps: the observation is on the
    frame's pixel grid (a resampled one needs whole renders)."""
    return isinstance(renderer, ObservationRenderer)


def unit_boxes(scene: Scene, dtype):
    """Every group's unit-flux box images and box corners (frame pixels), in :func:`_groups`
    order (traceable)."""
    return [group_boxes(scene, box, members, dtype)[::2] for (_, box), members in _groups(scene).items()]


def component_boxes(core: Scene, renderer: ObservationRenderer, comps) -> dict:
    """(source, component) -> (unit-flux box image (h, w) float64, top-left corner (y, x) in
    frame pixels) for the components ``comps`` of the prepared scene ``core``."""
    boxes = compiled(unit_boxes, platform(renderer.data))(core, renderer.data.dtype)
    where = {id(c): (i, j) for i, s in enumerate(core.sources) for j, c in enumerate(getattr(s, "components", ()))}
    wanted, out = set(comps), {}
    for members, (images, corners) in zip(_groups(core).values(), boxes, strict=True):
        images, corners = np.asarray(images, np.float64), np.asarray(corners)
        for k, (c, _) in enumerate(members):
            if where[id(c)] in wanted:
                out[where[id(c)]] = (images[k], corners[k])
    return out


def kernel_window(renderer: ObservationRenderer) -> np.ndarray:
    """The difference kernel in pixels, (observed bands, 2 ry + 1, 2 rx + 1), centred: the part
    of the canvas's kernel within the PSF stamp's reach."""
    g = renderer.geometry
    ry, rx = g.reach
    full = fft.irfft2(np.asarray(renderer.kernel_ft), s=g.canvas_shape)
    rows = np.arange(-ry, ry + 1) % g.canvas_shape[0]
    cols = np.arange(-rx, rx + 1) % g.canvas_shape[1]
    return full[:, rows[:, None], cols[None, :]]


def convolve_stamps(images, corners, renderer: ObservationRenderer, scale=None):
    """Box images (m, bands or 1, h, w) with top-left corners (m, 2) in frame pixels through the
    difference kernel: (m, observed bands, h + 2 ry, w + 2 rx) float64 stamps and their top-left
    corners (m, 2) in observation pixels. ``scale`` (m, observed bands), e.g. spectra, multiplies
    each band (one transform of a single-band image serves every band). Box light beyond the
    canvas's kept margin is cut, as the canvas cuts it."""
    g = renderer.geometry
    (ry, rx), (py, px), kept = g.reach, g.pad, g.kept_shape
    kernel = kernel_window(renderer)
    images, corners = np.asarray(images, np.float64), np.asarray(corners, int).reshape(-1, 2)
    m, _, h, w = images.shape
    fy, fx = fast_size(h + 2 * ry), fast_size(w + 2 * rx)
    # the kernel with its centre at (0, 0), wrapped: a product of FTs is then the linear
    # convolution of a box placed at (ry, rx), which stays inside the FFT's size
    k = np.zeros((kernel.shape[0], fy, fx))
    k[:, : ry + 1, : rx + 1] = kernel[:, ry:, rx:]
    k[:, fy - ry :, : rx + 1] = kernel[:, :ry, rx:]
    k[:, : ry + 1, fx - rx :] = kernel[:, ry:, :rx]
    k[:, fy - ry :, fx - rx :] = kernel[:, :ry, :rx]
    # the canvas holds the frame and ``pad`` around it: light beyond is cut
    yy = corners[:, 0, None] + np.arange(h)[None]
    xx = corners[:, 1, None] + np.arange(w)[None]
    keep = ((yy >= -py) & (yy < kept[0] - py))[:, :, None] & ((xx >= -px) & (xx < kept[1] - px))[:, None, :]
    k_ft = fft.rfft2(k)
    conv = np.empty((m, kernel.shape[0], h + 2 * ry, w + 2 * rx))
    for start in range(0, m, STAMP_BATCH):  # a few tens of MB of FFTs at a time
        part = slice(start, start + STAMP_BATCH)
        stack = np.zeros((len(images[part]), images.shape[1], fy, fx))
        stack[:, :, ry : ry + h, rx : rx + w] = images[part] * keep[part, None]
        product = fft.rfft2(stack) * k_ft[None]
        if scale is not None:
            product *= np.asarray(scale, np.float64)[part, :, None, None]
        conv[part] = fft.irfft2(product, s=(fy, fx))[:, :, : h + 2 * ry, : w + 2 * rx]
    return conv, corners - np.array([ry, rx]) - np.asarray(renderer.offset)


def observed_stamps(core: Scene, renderer: ObservationRenderer, comps) -> dict:
    """(source, component) -> (stamp (observed bands, h + 2 ry, w + 2 rx) float64, top-left
    (y, x) in observation pixels) of each of ``comps`` of the prepared scene ``core`` at unit
    spectrum (:func:`convolve_stamps`). Stamps may reach beyond the observation; callers clip
    them."""
    boxes = component_boxes(core, renderer, comps)
    by_shape: dict = {}
    for ij, (img, _) in boxes.items():
        by_shape.setdefault(img.shape, []).append(ij)
    out = {}
    for members in by_shape.values():
        images = np.stack([boxes[ij][0] for ij in members])[:, None]
        conv, tops = convolve_stamps(images, [boxes[ij][1] for ij in members], renderer)
        out.update({ij: (conv[m], tuple(int(t) for t in tops[m])) for m, ij in enumerate(members)})
    return out


__all__ = ["component_boxes", "convolve_stamps", "has_stamps", "kernel_window", "observed_stamps", "unit_boxes"]
