"""The flat unconstrained parameter vector: round trips for every constraint, on device and host."""

import jax.numpy as jnp
import numpy as np

import scarlet2 as sc
from scarlet2.packing import pack, pack_host, pack_stepsizes, unpack, unpack_host
from scarlet2.parameter import free_parameters


def _mixed_scene():
    frame = sc.Frame(list("gri"), (30, 30))
    with sc.Scene(frame) as scene:
        sc.Source(
            (10.3, 12.6),
            spectrum=sc.Parameter([1.0, 2.0, 3.0], "positive", stepsize=0.1),
            morphology=sc.Sersic(n=sc.Parameter(2.5, (0.3, 8.0)), r_e=3.0, ellipticity=[0.2, -0.1]),
        )
        sc.Source(
            (20.0, 18.0),
            # a colour (fractions per band) and a fixed amplitude: a simplex among elementwise ones
            spectrum=sc.Parameter([0.2, 0.3, 0.5], "simplex"),
            morphology=sc.Gaussian(sigma=1.5, q=0.6, angle=0.3),
        )
        sc.Background(sc.Parameter([0.1, -0.2, 0.05], stepsize=0.5))
    return scene


def test_pack_unpack_round_trip():
    scene = _mixed_scene()
    u = pack(scene)
    np.testing.assert_allclose(pack_host(scene), np.asarray(u), rtol=1e-5, atol=1e-6)
    before = [np.asarray(p.value) for p in free_parameters(scene)]
    for back in (unpack(scene, u), unpack_host(scene, np.asarray(u))):
        after = [np.asarray(p.value) for p in free_parameters(back)]
        for a, b in zip(before, after, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_layout_groups_constraints_and_aligns_stepsizes():
    scene = _mixed_scene()
    u = np.asarray(pack(scene))
    steps = pack_stepsizes(scene)
    # offset, spectrum, n, r_e, e | offset, simplex (3 -> 2 entries), sigma, q, angle | sky
    assert u.shape == steps.shape == (2 + 3 + 1 + 1 + 2 + 2 + 2 + 1 + 1 + 1 + 3,)
    # changing one unconstrained entry changes exactly one constrained value
    free = free_parameters(scene)
    for k in range(u.size):
        v = u.copy()
        v[k] += 0.5
        changed = [
            not np.allclose(np.asarray(p.value), np.asarray(q.value))
            for p, q in zip(free, free_parameters(unpack(scene, jnp.asarray(v))), strict=True)
        ]
        assert sum(changed) == 1
    # the spectrum's step (0.1) and the sky's (0.5) land on their own entries
    assert np.count_nonzero(np.isclose(steps, 0.1)) == 3
    assert np.count_nonzero(np.isclose(steps, 0.5)) == 3
