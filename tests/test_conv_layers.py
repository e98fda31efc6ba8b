"""Convolution, pooling and spatial normalization layers, on every backend: the course notebook's
published numbers, naive against fast, native kernels against the portable path, analytic
gradients against numerical ones in float64, bounded chunks, and one clear error per bad input."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers.gradient_check import eval_numerical_gradient_array, rel_error
from xpml.nets import conv_layers as L

from ._readonly import READONLY_BACKEND, readonly_arrays


def _arrays(bk, *shapes, seed=0, dtype="float64"):
    host = np.random.default_rng(seed)
    return [bk.asarray(host.standard_normal(s).astype(dtype)) for s in shapes]


def _num_grads(f, inputs, dout):
    """Numerical gradients of ``sum(f(*inputs) * dout)`` with respect to each input."""
    grads = []
    for i, x in enumerate(inputs):
        xs = list(inputs)

        def fi(v, i=i, xs=xs):
            xs[i] = v
            return f(*xs)

        grads.append(eval_numerical_gradient_array(fi, backend.get_namespace(x).asarray(x, copy=True), dout))
    return grads


def _np(a):
    return backend.to_numpy(a)


# ---- the notebook's published numbers ----------------------------------------------------------------

CONV_OUT = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                      [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                      [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                     [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                      [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                      [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])

POOL_OUT = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                      [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                      [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                     [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                      [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                      [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])


@pytest.mark.parametrize("forward", [L.conv_forward_naive, L.conv_forward_fast])
def test_conv_forward_reproduces_the_notebook(bk, forward):
    x = bk.asarray(np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4))
    w = bk.asarray(np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4))
    b = bk.asarray(np.linspace(-0.1, 0.2, num=3))
    out, _ = forward(x, w, b, {"stride": 2, "pad": 1})
    assert_placement(out, backend=bk, shape=(2, 3, 2, 2), dtype=x.dtype)
    assert rel_error(_np(out), CONV_OUT) < 1e-7  # the notebook: "around 1e-8"


@pytest.mark.parametrize("forward", [L.max_pool_forward_naive, L.max_pool_forward_fast])
def test_max_pool_forward_reproduces_the_notebook(bk, forward):
    x = bk.asarray(np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4))
    out, _ = forward(x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    assert_placement(out, backend=bk, shape=(2, 3, 2, 2), dtype=x.dtype)
    assert rel_error(_np(out), POOL_OUT) < 1e-7


def _seed231(shape, scale, shift):
    # The notebook's data: np.random.seed(231), then scale * randn + shift.
    return scale * np.random.RandomState(231).randn(*shape) + shift


def test_spatial_batchnorm_reproduces_the_notebook_statistics(bk):
    x = bk.asarray(_seed231((2, 3, 4, 5), 4, 10))
    gamma, beta = bk.asarray(np.array([3.0, 4.0, 5.0])), bk.asarray(np.array([6.0, 7.0, 8.0]))
    out, _ = L.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert_placement(out, like=x)
    out = _np(out)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [6.0, 7.0, 8.0], rtol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [2.99999885, 3.99999804, 4.99999798], rtol=1e-8)


def test_spatial_batchnorm_test_time_reproduces_the_notebook(bk):
    state = np.random.RandomState(231)
    N, C, H, W = 10, 4, 11, 12
    bn_param = {"mode": "train"}
    gamma, beta = bk.asarray(np.ones(C)), bk.asarray(np.zeros(C))
    for _ in range(50):
        L.spatial_batchnorm_forward(bk.asarray(2.3 * state.randn(N, C, H, W) + 13), gamma, beta, bn_param)
    bn_param["mode"] = "test"
    out, _ = L.spatial_batchnorm_forward(bk.asarray(2.3 * state.randn(N, C, H, W) + 13), gamma, beta, bn_param)
    out = _np(out)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [-0.08034406, 0.07562881, 0.05716371, 0.04378383],
                               rtol=1e-6)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [0.96718744, 1.0299714, 1.02887624, 1.00585577], rtol=1e-7)


def test_spatial_groupnorm_reproduces_the_notebook_statistics(bk):
    N, C, G = 2, 6, 2
    x = bk.asarray(_seed231((N, C, 4, 5), 4, 10))
    gamma, beta = bk.asarray(np.ones((1, C, 1, 1))), bk.asarray(np.zeros((1, C, 1, 1)))
    out, _ = L.spatial_groupnorm_forward(x, gamma, beta, G, {})
    assert_placement(out, like=x)
    groups = _np(out).reshape(N * G, -1)
    np.testing.assert_allclose(groups.mean(axis=1), 0.0, atol=1e-14)
    np.testing.assert_allclose(groups.std(axis=1), [0.99999963, 0.99999948, 0.99999973, 0.99999968], rtol=1e-8)


# ---- gradients against numerical ones (float64) ------------------------------------------------------

ODD = {"stride": 2, "pad": 2, "dilation": 2}  # x (5, 5), w (3, 2): output (5 + 4 - 5) / 2 + 1 = 3 by 4


def _portable_conv(x, w, b, conv_param):
    # The function the numerical gradients differentiate: the portable fast path, which the tests
    # below show equal to the naive one, and which costs HH*WW slices per call instead of H'*W'.
    return L.conv_forward_fast(x, w, b, conv_param, native=False)[0]


def _portable_pool(x, pool_param):
    return L.max_pool_forward_fast(x, pool_param, native=False)[0]


@pytest.mark.parametrize(("forward", "backward_", "conv_param"), [
    (L.conv_forward_naive, L.conv_backward_naive, {"stride": 1, "pad": 1}),
    (L.conv_forward_naive, L.conv_backward_naive, ODD),
    (L.conv_forward_fast, L.conv_backward_fast, ODD),
])
def test_conv_backward_matches_numerical_gradients(bk, forward, backward_, conv_param):
    x, w, b = _arrays(bk, (2, 2, 5, 5), (3, 2, 3, 2), (3,))
    out, cache = forward(x, w, b, conv_param)
    (dout,) = _arrays(bk, tuple(out.shape), seed=1)
    grads = backward_(dout, cache)
    num = _num_grads(lambda x, w, b: _portable_conv(x, w, b, conv_param), [x, w, b], dout)
    for got, like, numeric in zip(grads, (x, w, b), num, strict=True):
        assert_placement(got, like=like)
        assert rel_error(_np(got), _np(numeric)) < 1e-7


@pytest.mark.parametrize(("forward", "backward_"), [(L.max_pool_forward_naive, L.max_pool_backward_naive),
                                                    (L.max_pool_forward_fast, L.max_pool_backward_fast)])
@pytest.mark.parametrize("pool_param", [{"pool_height": 2, "pool_width": 2, "stride": 2},
                                        {"pool_height": 3, "pool_width": 2, "stride": 2}])
def test_max_pool_backward_matches_numerical_gradients(bk, forward, backward_, pool_param):
    (x,) = _arrays(bk, (1, 2, 5, 4) if pool_param["pool_height"] == 3 else (1, 2, 4, 4))
    out, cache = forward(x, pool_param)
    (dout,) = _arrays(bk, tuple(out.shape), seed=1)
    dx = backward_(dout, cache)
    assert_placement(dx, like=x)
    (num,) = _num_grads(lambda x: _portable_pool(x, pool_param), [x], dout)
    assert rel_error(_np(dx), _np(num)) < 1e-9


@pytest.mark.parametrize("mode", ["train", "test"])
def test_spatial_batchnorm_backward_matches_numerical_gradients(bk, mode):
    x, gamma, beta = _arrays(bk, (2, 3, 2, 3), (3,), (3,))
    (dout,) = _arrays(bk, (2, 3, 2, 3), seed=1)
    xp = bk.xp

    def param():
        p = {"mode": mode}
        if mode == "test":
            p["running_mean"] = bk.asarray(np.array([0.1, -0.2, 0.3]))
            p["running_var"] = bk.asarray(np.array([0.5, 1.5, 2.0]))
        return p

    _, cache = L.spatial_batchnorm_forward(x, gamma, beta, param())
    grads = L.spatial_batchnorm_backward(dout, cache)
    num = _num_grads(lambda x, g, b: L.spatial_batchnorm_forward(x, g, b, param())[0], [x, gamma, beta], dout)
    for got, like, numeric in zip(grads, (x, gamma, beta), num, strict=True):
        assert_placement(got, like=like)
        assert rel_error(_np(got), _np(numeric)) < 1e-7
    assert xp.isdtype(grads[0].dtype, "real floating")


def test_spatial_groupnorm_backward_matches_numerical_gradients(bk):
    x, gamma, beta = _arrays(bk, (2, 4, 2, 3), (1, 4, 1, 1), (1, 4, 1, 1))
    (dout,) = _arrays(bk, (2, 4, 2, 3), seed=1)
    _, cache = L.spatial_groupnorm_forward(x, gamma, beta, 2, {})
    grads = L.spatial_groupnorm_backward(dout, cache)
    num = _num_grads(lambda x, g, b: L.spatial_groupnorm_forward(x, g, b, 2, {})[0], [x, gamma, beta], dout)
    for got, like, numeric in zip(grads, (x, gamma, beta), num, strict=True):
        assert_placement(got, like=like)
        assert rel_error(_np(got), _np(numeric)) < 1e-7


def test_sandwich_layers_match_numerical_gradients(bk):
    x, w, b = _arrays(bk, (1, 2, 4, 4), (2, 2, 3, 3), (2,))
    conv_param, pool_param = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    cases = [(lambda x, w, b: L.conv_relu_forward(x, w, b, conv_param), L.conv_relu_backward),
             (lambda x, w, b: L.conv_relu_pool_forward(x, w, b, conv_param, pool_param), L.conv_relu_pool_backward)]
    for forward, backward_ in cases:
        out, cache = forward(x, w, b)
        (dout,) = _arrays(bk, tuple(out.shape), seed=1)
        grads = backward_(dout, cache)
        num = _num_grads(lambda x, w, b, forward=forward: forward(x, w, b)[0], [x, w, b], dout)
        for got, numeric in zip(grads, num, strict=True):
            assert rel_error(_np(got), _np(numeric)) < 1e-7


# ---- fast against naive, native against portable ------------------------------------------------------

SHAPES = [  # x, w, conv_param: odd sizes, strides, pads, dilations, 1x1 filters
    ((3, 2, 7, 9), (4, 2, 3, 2), {"stride": 2, "pad": 2, "dilation": 2}),
    ((2, 3, 5, 5), (5, 3, 1, 1), {"stride": 1, "pad": 0}),
    ((1, 4, 12, 7), (2, 4, 5, 3), {"stride": 3, "pad": 1, "dilation": 1}),
    ((2, 1, 6, 6), (3, 1, 2, 2), {"stride": 1, "pad": 3, "dilation": 3}),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "conv_param"), SHAPES)
def test_conv_fast_native_and_portable_agree_with_naive(bk, x_shape, w_shape, conv_param):
    x, w, b = _arrays(bk, x_shape, w_shape, (w_shape[0],))
    ref, ref_cache = L.conv_forward_naive(x, w, b, conv_param)
    (dout,) = _arrays(bk, tuple(ref.shape), seed=1)
    ref_grads = L.conv_backward_naive(dout, ref_cache)
    for native in (True, False):
        out, cache = L.conv_forward_fast(x, w, b, conv_param, native=native)
        assert_close(out, ref, rtol=1e-12, atol=1e-12)
        for got, want in zip(L.conv_backward_fast(dout, cache), ref_grads, strict=True):
            assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("x_shape", "w_shape", "conv_param"), SHAPES)
def test_conv_native_kernel_matches_the_portable_path_in_float32(bk, x_shape, w_shape, conv_param):
    x, w, b = _arrays(bk, x_shape, w_shape, (w_shape[0],), dtype="float32")
    want, want_cache = L.conv_forward_fast(x, w, b, conv_param, native=False)
    got, got_cache = L.conv_forward_fast(x, w, b, conv_param)
    # Sums of C*HH*WW float32 products in another order: a few units in the last place of the sum.
    assert_close(got, want, rtol=1e-5, atol=1e-5)
    (dout,) = _arrays(bk, tuple(want.shape), seed=1, dtype="float32")
    for g, w_ in zip(L.conv_backward_fast(dout, got_cache), L.conv_backward_fast(dout, want_cache), strict=True):
        assert_close(g, w_, rtol=1e-5, atol=1e-5)


POOLS = [
    ((2, 3, 8, 6), {"pool_height": 2, "pool_width": 2, "stride": 2}),
    ((2, 2, 7, 9), {"pool_height": 3, "pool_width": 3, "stride": 2}),
    ((1, 2, 5, 7), {"pool_height": 1, "pool_width": 3, "stride": 1}),
]


@pytest.mark.parametrize(("x_shape", "pool_param"), POOLS)
def test_max_pool_fast_native_and_portable_agree_with_naive(bk, x_shape, pool_param):
    (x,) = _arrays(bk, x_shape)
    ref, ref_cache = L.max_pool_forward_naive(x, pool_param)
    (dout,) = _arrays(bk, tuple(ref.shape), seed=1)
    ref_dx = L.max_pool_backward_naive(dout, ref_cache)
    for native in (True, False):
        out, cache = L.max_pool_forward_fast(x, pool_param, native=native)
        assert_close(out, ref, rtol=0.0)
        assert_close(L.max_pool_backward_fast(dout, cache), ref_dx)


def test_max_pool_native_kernel_matches_the_portable_path_in_float32(bk):
    for x_shape, pool_param in POOLS:
        (x,) = _arrays(bk, x_shape, dtype="float32")
        want, want_cache = L.max_pool_forward_fast(x, pool_param, native=False)
        got, got_cache = L.max_pool_forward_fast(x, pool_param)
        assert_close(got, want, rtol=0.0)
        (dout,) = _arrays(bk, tuple(want.shape), seed=1, dtype="float32")
        # Overlapping windows add two gradients into one pixel, in either order.
        assert_close(L.max_pool_backward_fast(dout, got_cache), L.max_pool_backward_fast(dout, want_cache))


def test_portable_conv_runs_in_chunks_within_its_budget(bk):
    x, w, b = _arrays(bk, (7, 2, 6, 5), (3, 2, 3, 3), (3,))
    conv_param = {"stride": 1, "pad": 1}
    whole, whole_cache = L.conv_forward_fast(x, w, b, conv_param, native=False)
    assert whole_cache.chunks == 1
    per_example = 2 * 2 * 3 * 3 * 6 * 5 * 8  # two copies of the (C HH WW, H' W') float64 columns
    parts, parts_cache = L.conv_forward_fast(x, w, b, conv_param, native=False, memory_budget=3 * per_example)
    assert parts_cache.chunks == 3  # 7 examples, 3 per chunk
    assert_close(parts, whole)
    (dout,) = _arrays(bk, tuple(whole.shape), seed=1)
    for got, want in zip(L.conv_backward_fast(dout, parts_cache), L.conv_backward_fast(dout, whole_cache),
                         strict=True):
        assert_close(got, want)


def test_the_adapters_of_torch_and_jax_hold_native_kernels():
    from xpml.backend import _registry

    for name in ("numpy", "array_api_strict", "cupy"):
        assert _registry.ADAPTERS[name].native_conv2d() is None
    for name in ("torch", "jax"):
        if any(s.name == name and s.usable for s in backend.list_backends()):
            assert _registry.ADAPTERS[name].native_conv2d().name == name


def test_layers_leave_their_inputs_unchanged(bk):
    x, w, b = _arrays(bk, (2, 2, 5, 5), (2, 2, 3, 3), (2,))
    before = [_np(a).copy() for a in (x, w, b)]
    out, cache = L.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1}, native=False)
    L.conv_backward_fast(out, cache)
    out, cache = L.conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    L.conv_backward_naive(out, cache)
    for a, was in zip((x, w, b), before, strict=True):
        np.testing.assert_array_equal(_np(a), was)


# ---- bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("x_shape", "w_shape", "conv_param", "match"), [
    ((2, 3, 5), (2, 3, 3, 3), {}, r"x must have shape \(N, C, H, W\)"),
    ((2, 3, 5, 5), (2, 4, 3, 3), {}, "w has 4 input channels, x has 3"),
    ((2, 3, 5, 5), (2, 3, 7, 3), {"pad": 0}, "larger than the padded input height 5"),
    ((2, 3, 5, 5), (2, 3, 3, 3), {"stride": 3, "pad": 1}, r"\(5 - 3 \+ 2 \* 1\) / 3 \+ 1 = 2.33333 is not an integer"),
    ((2, 3, 5, 5), (2, 3, 3, 3), {"stride": 0}, r"conv_param\['stride'\] must be at least 1"),
    ((2, 3, 5, 5), (2, 3, 3, 3), {"stride": -1}, r"conv_param\['stride'\] must be at least 1"),
    ((2, 3, 5, 5), (2, 3, 3, 3), {"dilation": 0}, r"conv_param\['dilation'\] must be at least 1"),
    ((2, 3, 5, 5), (2, 3, 3, 3), {"pad": -1}, r"conv_param\['pad'\] must be non-negative"),
])
@pytest.mark.parametrize("forward", [L.conv_forward_naive, L.conv_forward_fast])
def test_bad_convolutions_are_refused_clearly(forward, x_shape, w_shape, conv_param, match):
    bk = backend.get_backend("numpy")
    x, w = _arrays(bk, x_shape, w_shape)
    b = bk.asarray(np.zeros(w_shape[0]))
    with pytest.raises(ValueError, match=match):
        forward(x, w, b, conv_param)


def test_a_non_integer_stride_is_a_type_error():
    bk = backend.get_backend("numpy")
    x, w, b = _arrays(bk, (1, 1, 5, 5), (1, 1, 3, 3), (1,))
    with pytest.raises(TypeError, match=r"conv_param\['stride'\] must be an integer, got 1.5"):
        L.conv_forward_fast(x, w, b, {"stride": 1.5})


@pytest.mark.parametrize(("pool_param", "match"), [
    ({"pool_height": 2, "pool_width": 2, "stride": 2}, r"\(5 - 2 \+ 2 \* 0\) / 2 \+ 1 = 2.5 is not an integer"),
    ({"pool_height": 6, "pool_width": 2, "stride": 1}, "larger than the padded input height 5"),
    ({"pool_height": 2, "pool_width": 2, "stride": 0}, r"pool_param\['stride'\] must be at least 1"),
    ({"pool_height": 2, "stride": 1}, r"pool_param\['pool_width'\] is required"),
])
@pytest.mark.parametrize("forward", [L.max_pool_forward_naive, L.max_pool_forward_fast])
def test_pool_windows_that_do_not_tile_are_refused(forward, pool_param, match):
    (x,) = _arrays(backend.get_backend("numpy"), (1, 2, 5, 5))
    with pytest.raises(ValueError, match=match):
        forward(x, pool_param)


def test_bad_group_norm_arguments_are_refused():
    bk = backend.get_backend("numpy")
    x, g = _arrays(bk, (2, 6, 3, 3), (1, 6, 1, 1))
    with pytest.raises(ValueError, match="G must be a positive integer that divides the 6 channels, got 4"):
        L.spatial_groupnorm_forward(x, g, g, 4, {})
    with pytest.raises(ValueError, match=r"gamma must have shape \(1, 6, 1, 1\), got \(6,\)"):
        L.spatial_groupnorm_forward(x, bk.asarray(np.ones(6)), g, 2, {})
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, H, W\)"):
        L.spatial_batchnorm_forward(bk.asarray(np.ones((2, 6))), bk.asarray(np.ones(6)), bk.asarray(np.ones(6)),
                                    {"mode": "train"})


def test_mixed_backends_are_refused(bk):
    if bk.name == "numpy":
        pytest.skip("needs a second backend")
    x, w, b = _arrays(bk, (1, 1, 4, 4), (1, 1, 3, 3), (1,))
    with pytest.raises(backend.BackendMismatchError):
        L.conv_forward_fast(x, backend.to_numpy(w), b, {})


def test_backward_passes_on_read_only_arrays_agree_bitwise(monkeypatch):
    # Where an array refuses writes (read-only NumPy here, JAX), the gradients are added into a
    # new array instead of in place: the same numbers in the same order, so the same bits.
    def grads(bk):
        out = []
        for x_shape, w_shape, conv_param in SHAPES:
            x, w, b = _arrays(bk, x_shape, w_shape, (w_shape[0],))
            for forward, backward_ in ((L.conv_forward_naive, L.conv_backward_naive),
                                       (lambda *a: L.conv_forward_fast(*a, native=False), L.conv_backward_fast)):
                y, cache = forward(x, w, b, conv_param)
                (dout,) = _arrays(bk, tuple(y.shape), seed=1)
                out += [_np(g).copy() for g in backward_(dout, cache)]
        for x_shape, pool_param in POOLS:
            (x,) = _arrays(bk, x_shape)
            for forward, backward_ in ((L.max_pool_forward_naive, L.max_pool_backward_naive),
                                       (lambda *a: L.max_pool_forward_fast(*a, native=False),
                                        L.max_pool_backward_fast)):
                y, cache = forward(x, pool_param)
                (dout,) = _arrays(bk, tuple(y.shape), seed=1)
                out.append(_np(backward_(dout, cache)).copy())
        return out

    in_place = grads(backend.get_backend("numpy"))
    with readonly_arrays(monkeypatch):
        functional = grads(READONLY_BACKEND)
    assert len(functional) == len(in_place)
    for got, want in zip(functional, in_place, strict=True):
        np.testing.assert_array_equal(got, want)
