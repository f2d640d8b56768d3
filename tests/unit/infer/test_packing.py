"""The flat unconstrained parameter vector: round trips for every constraint, on device and host."""

import jax.numpy as jnp
import numpy as np

import scarlet2 as sc
from scarlet2 import free_parameters
from scarlet2.infer.packing import pack, pack_host, pack_stepsizes, unpack, unpack_host


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


def _blend_scene():
    """Bulge + disk galaxies (two components share a centre), a lone disk with a prior-free
    fixed n, and stars: groups with repeated, missing and adjacent slots."""
    frame = sc.Frame(list("gri"), (40, 40))
    with sc.Scene(frame) as scene:
        for k, yx in enumerate([(10.2, 11.7), (25.6, 14.1), (18.3, 29.4)]):
            sc.Source(
                yx,
                components=[
                    sc.Component([2.0 + k, 1.5, 1.0], sc.Sersic(n=4.0, r_e=1.5 + 0.3 * k, ellipticity=[0.1, 0.0])),
                    sc.Component([1.0, 1.5 + k, 2.0], sc.Sersic(n=1.0, r_e=3.0, ellipticity=[-0.1, 0.2 * k])),
                ],
                box=27,
            )
        sc.Source((31.1, 31.8), [1.0, 1.0, 1.0], sc.Sersic(n=sc.Parameter(1.0, fixed=True), r_e=2.0), box=27)
        sc.PointSource((5.4, 34.2), [3.0, 2.0, 1.0], box=15)
        sc.PointSource((34.7, 4.9), [1.0, 2.0, 3.0], box=15)
    return scene


def test_flat_view_stacks_group_fields_as_slices():
    """The renderer's group fields come out of the flat vector as slices: the same canvas and
    gradient as stacking the unpacked values, with no per-parameter stack in the program."""
    import jax

    from scarlet2.infer.packing import FlatView
    from scarlet2.render.canvas import render_canvas
    from scarlet2.render.geometry import Geometry

    scene = _blend_scene()
    geometry = Geometry(scene.frame.shape, (8, 8), (56, 56), (8, 8))
    u = pack(scene) + 0.05 * jnp.sin(jnp.arange(pack(scene).size))  # off the initial values
    weights = jnp.cos(jnp.arange(3 * 56 * 56)).reshape(3, 56, 56)

    def via_view(u):
        view = FlatView(scene, u)
        return jnp.sum(weights * render_canvas(view.scene, geometry, stack=view.stack))

    def via_unpack(u):
        return jnp.sum(weights * render_canvas(unpack(scene, u), geometry))

    v1, g1 = jax.jit(jax.value_and_grad(via_view))(u)
    v2, g2 = jax.jit(jax.value_and_grad(via_unpack))(u)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(g2))))
    assert np.count_nonzero(np.asarray(g1)) == u.size  # every free entry reaches the model

    def float_stacks(f):  # stack / concatenate of floats and their transposes, nested jaxprs too
        def count(jaxpr):
            n = 0
            for e in jaxpr.eqns:
                floating = jnp.issubdtype(e.outvars[0].aval.dtype, jnp.floating)
                n += floating and e.primitive.name in ("stack", "unstack", "concatenate")
                n += sum(count(j) for j in jax.extend.core.jaxprs_in_params(e.params))
            return n

        return count(jax.make_jaxpr(jax.grad(f))(u).jaxpr)

    # what remains are the Sersic interpolation weights and a one-member group's fixed n
    assert 2 * float_stacks(via_view) <= float_stacks(via_unpack)
