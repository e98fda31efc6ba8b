"""The layers: placement, values against plain references, every backward pass against numerical
gradients in float64, no input changed, clear errors; on every backend."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from xpml.nets import layers

N, D, M, C = 6, 5, 4, 3


def _arrays(bk, *shapes, seed=0, scale=1.0, shift=0.0):
    host = np.random.default_rng(seed)
    return [bk.asarray(shift + scale * host.standard_normal(s)) for s in shapes]


def _num_grads(f, inputs, dout):
    """Numerical gradients of ``sum(f(*inputs) * dout)`` with respect to each input (copies are perturbed)."""
    out = []
    for i, x in enumerate(inputs):
        xs = list(inputs)

        def fi(v, i=i, xs=xs):
            xs[i] = v
            return f(*xs)

        out.append(eval_numerical_gradient_array(fi, _copy(x), dout))
    return out


def _copy(x):
    xp = backend.get_namespace(x)
    return xp.asarray(x, copy=True)


def _unchanged(before, after):
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(a), b)


# ---- affine ----------------------------------------------------------------------------------------

def test_affine_forward_matches_the_course_reference_values(bk):
    # The course's published check: inputs from linspace, the expected output to 8 digits.
    x = bk.asarray(np.linspace(-0.1, 0.5, num=2 * 120).reshape(2, 4, 5, 6))
    w = bk.asarray(np.linspace(-0.2, 0.3, num=3 * 120).reshape(120, 3))
    b = bk.asarray(np.linspace(-0.3, 0.1, num=3))
    out, _ = layers.affine_forward(x, w, b)
    assert_placement(out, backend=bk, shape=(2, 3), dtype=bk.xp.float64)
    correct = np.array([[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]])
    assert rel_error(backend.to_numpy(out), correct) < 1e-8


def test_affine_backward_matches_numerical_gradients(bk):
    x, w, b, dout = _arrays(bk, (N, 2, 3), (6, M), (M,), (N, M))
    before = [backend.to_numpy(a).copy() for a in (x, w, b)]
    _, cache = layers.affine_forward(x, w, b)
    dx, dw, db = layers.affine_backward(dout, cache)
    for got, like in ((dx, x), (dw, w), (db, b)):
        assert_placement(got, like=like)
    num = _num_grads(lambda x, w, b: layers.affine_forward(x, w, b)[0], [x, w, b], dout)
    for analytic, numeric in zip((dx, dw, db), num, strict=True):
        assert rel_error(analytic, numeric) < 1e-8
    _unchanged(before, (x, w, b))


# ---- activations -----------------------------------------------------------------------------------

def test_relu_forward_matches_the_course_reference_values(bk):
    x = bk.asarray(np.linspace(-0.5, 0.5, num=12).reshape(3, 4))
    out, _ = layers.relu_forward(x)
    correct = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.04545455, 0.13636364],
                        [0.22727273, 0.31818182, 0.40909091, 0.5]])
    assert_placement(out, like=x)
    assert rel_error(backend.to_numpy(out), correct) < 1e-7


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_activation_backward_matches_numerical_gradients(bk, name):
    forward, backward = layers.ACTIVATIONS[name]
    # Values away from the kinks of ReLU and leaky ReLU, where the numerical derivative is exact.
    x, dout = _arrays(bk, (N, D), (N, D), seed=3)
    x = x + bk.xp.sign(x) * 0.1
    before = backend.to_numpy(x).copy()
    out, cache = forward(x)
    assert_placement(out, like=x)
    dx = backward(dout, cache)
    assert_placement(dx, like=x)
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: forward(v)[0], _copy(x), dout)) < 1e-8
    np.testing.assert_array_equal(backend.to_numpy(x), before)


def test_activation_values(bk):
    xh = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    x = bk.asarray(xh)
    expected = {"relu": np.maximum(xh, 0), "leaky_relu": np.where(xh > 0, xh, 0.01 * xh),
                "sigmoid": 1 / (1 + np.exp(-xh)), "tanh": np.tanh(xh)}
    for name, want in expected.items():
        np.testing.assert_allclose(backend.to_numpy(layers.ACTIVATIONS[name][0](x)[0]), want, rtol=1e-12, atol=1e-15)
    out, _ = layers.leaky_relu_forward(x, 0.2)
    np.testing.assert_allclose(backend.to_numpy(out), np.where(xh > 0, xh, 0.2 * xh), rtol=1e-12)


def test_sigmoid_does_not_overflow(bk):
    x = bk.asarray(np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]]))
    out, _ = layers.sigmoid_forward(x)
    host = backend.to_numpy(out)
    assert np.all(np.isfinite(host)) and host[0, 0] == 0.0 and host[0, -1] == 1.0 and host[0, 2] == 0.5


def test_maxout_takes_the_best_piece_and_routes_the_gradient_there(bk):
    x, dout = _arrays(bk, (N, 2 * M), (N, M), seed=4)
    out, cache = layers.maxout_forward(x)
    assert_placement(out, backend=bk, shape=(N, M), dtype=x.dtype)
    np.testing.assert_array_equal(backend.to_numpy(out), backend.to_numpy(x).reshape(N, M, 2).max(axis=2))
    dx = layers.maxout_backward(dout, cache)
    assert_placement(dx, like=x)
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: layers.maxout_forward(v)[0], _copy(x), dout)) < 1e-8
    out3, _ = layers.maxout_forward(x[:, :6], pieces=3)
    assert out3.shape == (N, 2)
    with pytest.raises(ValueError, match="H \\* pieces"):
        layers.maxout_forward(x, pieces=3)


# ---- normalization -------------------------------------------------------------------------------

def test_batchnorm_train_mode_normalizes_and_updates_the_running_statistics(bk):
    x, = _arrays(bk, (200, 3), scale=5.0, shift=12.0)
    gamma, beta = bk.asarray(np.array([1.0, 2.0, 3.0])), bk.asarray(np.array([11.0, 12.0, 13.0]))
    bn_param = {"mode": "train"}
    out, _ = layers.batchnorm_forward(x, gamma, beta, bn_param)
    host = backend.to_numpy(out)
    np.testing.assert_allclose(host.mean(axis=0), [11, 12, 13], rtol=1e-12)
    np.testing.assert_allclose(host.std(axis=0), [1, 2, 3], rtol=1e-5)
    xh = backend.to_numpy(x)
    for key, stat in (("running_mean", xh.mean(axis=0)), ("running_var", xh.var(axis=0))):
        assert_placement(bn_param[key], like=gamma)
        np.testing.assert_allclose(backend.to_numpy(bn_param[key]), 0.1 * stat, rtol=1e-12)


def test_batchnorm_test_mode_uses_the_running_statistics(bk):
    # The course's warm-up: after 50 training passes the test-time output is about standardized.
    host = np.random.default_rng(0)
    W1, W2 = host.standard_normal((50, 60)), host.standard_normal((60, 3))
    gamma, beta = bk.asarray(np.ones(3)), bk.asarray(np.zeros(3))
    bn_param = {"mode": "train"}
    for _ in range(50):
        a = bk.asarray(np.maximum(0, host.standard_normal((200, 50)) @ W1) @ W2)
        layers.batchnorm_forward(a, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    a = bk.asarray(np.maximum(0, host.standard_normal((200, 50)) @ W1) @ W2)
    kept = (bn_param["running_mean"], bn_param["running_var"])
    out, _ = layers.batchnorm_forward(a, gamma, beta, bn_param)
    assert bn_param["running_mean"] is kept[0] and bn_param["running_var"] is kept[1]
    h = backend.to_numpy(out)
    rm, rv = backend.to_numpy(kept[0]), backend.to_numpy(kept[1])
    np.testing.assert_allclose(h, (backend.to_numpy(a) - rm) / np.sqrt(rv + 1e-5), rtol=1e-10)
    assert np.all(np.abs(h.mean(axis=0)) < 0.3) and np.all(np.abs(h.std(axis=0) - 1) < 0.25)


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_normalization_backward_matches_numerical_gradients(bk, norm, mode):
    x, gamma, beta, dout = _arrays(bk, (4, D), (D,), (D,), (4, D), seed=5)
    x = 5 * x + 12
    forward, backward = {"batchnorm": (layers.batchnorm_forward, layers.batchnorm_backward),
                         "layernorm": (layers.layernorm_forward, layers.layernorm_backward)}[norm]
    stats = {"running_mean": bk.asarray(np.full(D, 11.0)), "running_var": bk.asarray(np.full(D, 20.0))}
    param = {"mode": mode, **(stats if norm == "batchnorm" else {})}
    before = [backend.to_numpy(a).copy() for a in (x, gamma, beta, stats["running_mean"])]
    _, cache = forward(x, gamma, beta, dict(param))
    grads = backward(dout, cache)
    for g, like in zip(grads, (x, gamma, beta), strict=True):
        assert_placement(g, like=like)
    num = _num_grads(lambda x, g, b: forward(x, g, b, dict(param))[0], [x, gamma, beta], dout)
    for analytic, numeric in zip(grads, num, strict=True):
        assert rel_error(analytic, numeric) < 1e-7
    _unchanged(before, (x, gamma, beta, stats["running_mean"]))


def test_batchnorm_backward_alt_is_the_same_formula(bk):
    x, gamma, beta, dout = _arrays(bk, (100, 50), (50,), (50,), (100, 50))
    _, cache = layers.batchnorm_forward(5 * x + 12, gamma, beta, {"mode": "train"})
    for a, b in zip(layers.batchnorm_backward(dout, cache), layers.batchnorm_backward_alt(dout, cache), strict=True):
        assert_close(a, b)


def test_layernorm_normalizes_each_row(bk):
    x, = _arrays(bk, (4, 3), scale=7.0, shift=3.0)
    out, _ = layers.layernorm_forward(x, bk.asarray(np.full(3, 3.0)), bk.asarray(np.full(3, 5.0)), {"mode": "train"})
    h = backend.to_numpy(out)
    np.testing.assert_allclose(h.mean(axis=1), 5.0, rtol=1e-12)
    np.testing.assert_allclose(h.std(axis=1), 3.0, rtol=1e-4)


def test_normalization_bad_parameters(bk):
    x, g, b = _arrays(bk, (4, 3), (3,), (3,))
    for param, err, match in [({}, ValueError, "'train' or 'test'"), ({"mode": "eval"}, ValueError, "'train'"),
                              ("train", TypeError, "must be a dict"), ({"mode": "train", "eps": -1}, ValueError, "eps"),
                              ({"mode": "train", "momentum": 2}, ValueError, "momentum")]:
        with pytest.raises(err, match=match):
            layers.batchnorm_forward(x, g, b, param)
    with pytest.raises(ValueError, match="gamma and beta of shape"):
        layers.batchnorm_forward(x, b[:2], b, {"mode": "train"})
    with pytest.raises(TypeError, match="ln_param must be a dict"):
        layers.layernorm_forward(x, g, b, None)


# ---- dropout -------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_keeps_a_fraction_p_and_the_expectation(bk, p):
    x = bk.asarray(np.random.default_rng(0).standard_normal((500, 500)) + 10)
    out, _ = layers.dropout_forward(x, {"mode": "train", "p": p})
    test, _ = layers.dropout_forward(x, {"mode": "test", "p": p})
    assert_placement(out, like=x)
    h, xh = backend.to_numpy(out), backend.to_numpy(x)
    assert abs((h == 0).mean() - (1 - p)) < 0.01
    assert abs(h.mean() - xh.mean()) < 0.05 * xh.mean()
    assert test is x  # test time: the identity


def test_dropout_backward_and_the_seed(bk):
    x, dout = _arrays(bk, (10, 10), (10, 10), shift=10.0)
    param = {"mode": "train", "p": 0.2, "seed": 123}
    out, cache = layers.dropout_forward(x, param)
    again, _ = layers.dropout_forward(x, param)
    np.testing.assert_array_equal(backend.to_numpy(out), backend.to_numpy(again))  # a seed fixes the mask
    dx = layers.dropout_backward(dout, cache)
    num = eval_numerical_gradient_array(lambda v: layers.dropout_forward(v, param)[0], _copy(x), dout)
    assert rel_error(dx, num) < 1e-9
    g = backend.Generator(0, xp=bk)
    a, _ = layers.dropout_forward(x, {"mode": "train", "p": 0.5, "generator": g})
    b, _ = layers.dropout_forward(x, {"mode": "train", "p": 0.5, "generator": g})
    assert not np.array_equal(backend.to_numpy(a), backend.to_numpy(b))  # a generator advances


def test_dropout_bad_parameters(bk):
    x, = _arrays(bk, (3, 3))
    for p in (0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"probability of keeping a unit and must be in \(0, 1\]"):
            layers.dropout_forward(x, {"mode": "train", "p": p})
    for p in ("0.5", None, True):
        with pytest.raises(TypeError):
            layers.dropout_forward(x, {"mode": "train", "p": p})
    with pytest.raises(ValueError, match="'train' or 'test'"):
        layers.dropout_forward(x, {"p": 0.5})
    assert layers.dropout_forward(x, {"mode": "train", "p": 1})[0] is x


# ---- losses --------------------------------------------------------------------------------------

def _naive_scores_loss(name, x, y):
    x, y = backend.to_numpy(x), backend.to_numpy(y)
    total = 0.0
    for i in range(x.shape[0]):
        if name == "svm":
            total += sum(max(0.0, x[i, j] - x[i, y[i]] + 1.0) for j in range(x.shape[1]) if j != y[i])
        else:
            m = x[i].max()
            total += math.log(sum(math.exp(v - m) for v in x[i])) - (x[i, y[i]] - m)
    return total / x.shape[0]


@pytest.mark.parametrize("name", ["svm", "softmax"])
def test_losses_on_scores_match_the_definition_and_numerical_gradients(bk, name):
    fn = {"svm": layers.svm_loss, "softmax": layers.softmax_loss}[name]
    host = np.random.default_rng(231)
    x = bk.asarray(0.001 * host.standard_normal((50, 10)))
    y = bk.asarray(host.integers(0, 10, 50))
    loss, dx = fn(x, y)
    assert_placement(loss, backend=bk, shape=(), dtype=bk.xp.float64)
    assert_placement(dx, like=x)
    assert abs(float(loss) - _naive_scores_loss(name, x, y)) < 1e-12
    # The course's sanity values: about 9 (= C - 1 margins of 1) and log(10).
    assert abs(float(loss) - (9.0 if name == "svm" else math.log(10))) < 0.01
    num = eval_numerical_gradient(lambda v: fn(v, y)[0], _copy(x))
    assert rel_error(dx, num) < 1e-7


def test_losses_refuse_mismatched_labels(bk):
    x, = _arrays(bk, (4, 3))
    for fn in (layers.svm_loss, layers.softmax_loss):
        with pytest.raises(ValueError, match="one label per row"):
            fn(x, bk.asarray(np.array([0, 1])))
        with pytest.raises(ValueError, match=r"\(N, C\)"):
            fn(x[0, :], bk.asarray(np.array([0])))


# ---- composite layers ----------------------------------------------------------------------------

def test_affine_relu_sandwich(bk):
    x, w, b, dout = _arrays(bk, (2, 3, 4), (12, 10), (10,), (2, 10), seed=6)
    out, cache = layers.affine_relu_forward(x, w, b)
    grads = layers.affine_relu_backward(dout, cache)
    num = _num_grads(lambda x, w, b: layers.affine_relu_forward(x, w, b)[0], [x, w, b], dout)
    for analytic, numeric in zip(grads, num, strict=True):
        assert rel_error(analytic, numeric) < 1e-8


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "maxout"])
def test_affine_norm_act_dropout_block(bk, normalization, activation):
    width = 2 * M if activation == "maxout" else M
    x, w, b, g, beta = _arrays(bk, (N, D), (D, width), (width,), (width,), (width,), seed=7)
    dout, = _arrays(bk, (N, M), seed=8)
    drop = {"mode": "train", "p": 0.6, "seed": 3}

    def f(x, w, b, g, beta):
        return layers.affine_norm_act_dropout_forward(x, w, b, g, beta, {"mode": "train"}, drop,
                                                      normalization=normalization, activation=activation)[0]

    _, cache = layers.affine_norm_act_dropout_forward(x, w, b, g, beta, {"mode": "train"}, drop,
                                                      normalization=normalization, activation=activation)
    dx, dw, db, dg, dbeta = layers.affine_norm_act_dropout_backward(dout, cache)
    inputs, analytic = [x, w, b], [dx, dw, db]
    if normalization:
        inputs, analytic = inputs + [g, beta], analytic + [dg, dbeta]
    else:
        assert dg is None and dbeta is None
    # Without a normalization only x, w and b are checked; f still takes gamma and beta.
    num = _num_grads(lambda *a: f(*a, *[g, beta][len(a) - 3:]), inputs, dout)
    for got, want in zip(analytic, num, strict=True):
        # The bias before a normalization has a zero gradient: compare with an absolute floor.
        np.testing.assert_allclose(backend.to_numpy(got), backend.to_numpy(want), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="unknown activation"):
        layers.affine_norm_act_dropout_forward(x, w, b, activation="swish")
    with pytest.raises(ValueError, match="unknown normalization"):
        layers.affine_norm_act_dropout_forward(x, w, b, normalization="groupnorm")


@pytest.mark.readonly_backend
def test_layers_write_nothing(bk):
    # On numpy:readonly every array refuses writes; the whole forward/backward chain runs anyway.
    x, w, b, g, beta, dout = _arrays(bk, (N, D), (D, M), (M,), (M,), (M,), (N, M), seed=9)
    bn = {"mode": "train"}
    out, cache = layers.affine_norm_act_dropout_forward(x, w, b, g, beta, bn, {"mode": "train", "p": 0.5, "seed": 1},
                                                        normalization="batchnorm", activation="relu")
    grads = layers.affine_norm_act_dropout_backward(dout, cache)
    assert all(gr is not None for gr in grads)
    loss, dscores = layers.softmax_loss(out, bk.asarray(np.arange(N) % M))
    assert np.isfinite(float(loss)) and dscores.shape == (N, M)
    assert bn["running_mean"].shape == (M,)


def test_passing_the_namespace_changes_nothing(bk):
    # The nets pass xp= (and device=) to skip the look-up: the same function, the same numbers.
    x, w, b, g, beta = _arrays(bk, (N, D), (D, 2 * M), (2 * M,), (2 * M,), (2 * M,), seed=11)
    dout, = _arrays(bk, (N, 2 * M), seed=12)
    for normalization in (None, *layers.NORMALIZATIONS):
        for activation in layers.ACTIVATIONS:
            args = (x, w, b, g, beta, {"mode": "train"}, {"mode": "train", "p": 0.7, "seed": 1})
            kw = {"normalization": normalization, "activation": activation}
            looked_up, cache1 = layers.affine_norm_act_dropout_forward(*args, **kw)
            passed, cache2 = layers.affine_norm_act_dropout_forward(*args, **kw, xp=bk.xp, device=bk.device)
            assert_close(passed, looked_up, rtol=0)
            d = dout[:, :looked_up.shape[1]]
            for got, want in zip(layers.affine_norm_act_dropout_backward(d, cache2, xp=bk.xp),
                                 layers.affine_norm_act_dropout_backward(d, cache1), strict=True):
                assert (got is None and want is None) or assert_close(got, want, rtol=0) is None


def test_one_vocabulary_for_the_command_line():
    from xpml.cli import _models

    assert _models.ACTIVATIONS == tuple(layers.ACTIVATIONS)
    assert _models.NORMALIZATIONS == ("none", *layers.NORMALIZATIONS)
    for name, (forward, backward) in {**layers.ACTIVATIONS, **layers.NORMALIZATIONS}.items():
        assert forward.__name__ == f"{name}_forward" and backward.__name__.endswith("_backward")
    # No private twin of a public layer is left behind.
    public = {n for n in layers.__all__ if callable(getattr(layers, n))}
    assert not [n for n in vars(layers) if n.startswith("_") and n.lstrip("_") in public]
