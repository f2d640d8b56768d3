"""Peak memory of the likelihood and its gradient grows with the sources' boxes, not with
n_sources x frame size (the published scarlet2 pastes a full-frame cube per source).

XLA's own memory analysis of the compiled program is the measure: deterministic, no timing.
"""

import jax
import numpy as np

import scarlet2 as sc
from scarlet2.infer.objective import loss_flat
from scarlet2.infer.packing import pack
from scarlet2.render.observe import prepare

BANDS = list("grizy")
SHAPE = (256, 256)
BOX = 35


def _temp_bytes(n_sources: int) -> int:
    rng = np.random.default_rng(n_sources)
    psf = np.asarray(sc.MoffatPSF(3.0).image((41, 41), n_bands=len(BANDS)))
    data = rng.normal(0, 1, (len(BANDS),) + SHAPE)
    obs = sc.Observation(data, weights=np.ones_like(data), psf=psf, bands=BANDS)
    with sc.Scene(sc.Frame(BANDS, SHAPE)) as scene:
        for _ in range(n_sources):
            sc.Source(
                rng.uniform(20, SHAPE[0] - 20, 2),
                spectrum=rng.uniform(50, 100, len(BANDS)),
                morphology=sc.Sersic(rng.uniform(1, 4), rng.uniform(1.5, 4), rng.uniform(-0.2, 0.2, 2)),
                box=BOX,
            )
    core, renderers = prepare(scene, obs)
    u = pack(core)
    compiled = jax.jit(jax.value_and_grad(loss_flat)).lower(u, core, renderers).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_gradient_memory_per_source_is_a_box_not_a_frame():
    few, many = 4, 64
    per_source = (_temp_bytes(many) - _temp_bytes(few)) / (many - few)
    frame_cube = len(BANDS) * SHAPE[0] * SHAPE[1] * 4  # float32
    box_cube = len(BANDS) * BOX * BOX * 4
    # a renderer with a frame-sized cube per source adds >= frame_cube per source (1.3 MB here);
    # boxes add a few box-sized buffers (images, their transforms and cotangents)
    assert per_source < 0.1 * frame_cube, f"{per_source / 1e3:.0f} kB per source, frame cube {frame_cube / 1e3:.0f} kB"
    assert per_source < 4 * box_cube, f"{per_source / 1e3:.0f} kB per source, box cube {box_cube / 1e3:.0f} kB"
