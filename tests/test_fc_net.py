"""FullyConnectedNet: parameters and placement, gradients against numerical ones (float64) with every
normalization, activation and dropout, the course's conventions, prediction, bad input."""

import math

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.classifiers.gradient_check import eval_numerical_gradient, param_loss
from xpml.nets import FullyConnectedNet, Solver

N, D, H1, H2, C = 4, 7, 10, 8, 4


def _data(bk, n=N, seed=5):
    rng = np.random.default_rng(seed)
    return bk.asarray(rng.standard_normal((n, D))), bk.asarray(rng.integers(0, C, n))


def _net(bk, **kw):
    kw = {"input_dim": D, "num_classes": C, "weight_scale": 5e-2, "dtype": "float64", "seed": 0, "xp": bk, **kw}
    return FullyConnectedNet(kw.pop("hidden_dims", [H1, H2]), **kw)


def _check_gradients(model, X, y, tol):
    loss, grads = model.loss(X, y)
    assert sorted(grads) == sorted(model.params)
    for name in sorted(grads):
        assert_placement(grads[name], like=model.params[name])
        num = eval_numerical_gradient(param_loss(model, name, X, y), model.params[name])
        got, want = backend.to_numpy(grads[name]), backend.to_numpy(num)
        # A bias just before a normalization has a zero gradient, hence the absolute floor.
        np.testing.assert_allclose(got, want, rtol=tol, atol=1e-8, err_msg=name)
    return loss


def test_params_shapes_and_placement(bk, dtype_name):
    model = _net(bk, normalization="batchnorm", dtype=dtype_name)
    shapes = {"W1": (D, H1), "b1": (H1,), "W2": (H1, H2), "b2": (H2,), "W3": (H2, C), "b3": (C,),
              "gamma1": (H1,), "beta1": (H1,), "gamma2": (H2,), "beta2": (H2,)}
    assert set(model.params) == set(shapes) and model.num_layers == 3
    for k, shape in shapes.items():
        assert_placement(model.params[k], backend=bk, shape=shape, dtype=getattr(bk.xp, dtype_name))
    h = {k: backend.to_numpy(v) for k, v in model.params.items()}
    assert not h["b1"].any() and (h["gamma2"] == 1).all() and not h["beta1"].any()
    assert len(model.bn_params) == 2 and model.bn_params[0]["mode"] == "train"
    assert_placement(model.bn_params[1]["running_var"], backend=bk, shape=(H2,), dtype=getattr(bk.xp, dtype_name))


def test_same_seed_same_weights_on_every_backend(bk):
    ref, net = _net(backend.get_backend("numpy"), seed=5), _net(bk, seed=5)
    for k in ref.params:
        np.testing.assert_array_equal(backend.to_numpy(net.params[k]), backend.to_numpy(ref.params[k]))
    assert not np.array_equal(backend.to_numpy(_net(bk, seed=6).params["W1"]), backend.to_numpy(net.params["W1"]))


def test_weight_scale_and_init_schemes():
    big = FullyConnectedNet([300], input_dim=400, weight_scale=0.01, seed=0)
    assert abs(float(np.std(big.params["W1"])) / 0.01 - 1) < 0.02
    he = FullyConnectedNet([300], input_dim=400, init="he", seed=0)
    assert abs(float(np.std(he.params["W1"])) / math.sqrt(2 / 400) - 1) < 0.02


def test_the_gradient_data_keep_away_from_relu_kinks():
    # A centred difference across a ReLU's kink measures neither side's slope (the notes' "kinks in
    # the objective"): the gradient checks below need every ReLU input of the plain net further
    # from 0 than their steps (1e-5, times inputs of order 1) can move it.
    model, (X, _) = _net(backend.get_backend("numpy")), _data(backend.get_backend("numpy"))
    p = {k: backend.to_numpy(v) for k, v in model.params.items()}
    a1 = backend.to_numpy(X) @ p["W1"] + p["b1"]
    a2 = np.maximum(a1, 0) @ p["W2"] + p["b2"]
    assert min(np.abs(a1).min(), np.abs(a2).min()) > 1e-4


@pytest.mark.parametrize("reg", [0.0, 3.14])
@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_gradients_match_numerical_ones(bk, normalization, reg):
    X, y = _data(bk)
    model = _net(bk, normalization=normalization, reg=reg)
    # The course expects up to 1e-4 with batchnorm (its statistics couple the rows of a batch).
    loss = _check_gradients(model, X, y, 1e-4 if normalization == "batchnorm" else 1e-5)
    assert_placement(loss, backend=bk, shape=(), dtype=bk.xp.float64)
    if reg == 0 and normalization is None:
        assert abs(float(loss) - math.log(C)) < 0.05  # small weights: about log(C)


@pytest.mark.parametrize("activation", ["leaky_relu", "sigmoid", "tanh", "maxout"])
def test_every_activation_has_right_gradients(bk, activation):
    X, y = _data(bk)
    _check_gradients(_net(bk, activation=activation, weight_scale=0.5, normalization="layernorm"), X, y, 1e-5)


def _relu_inputs_with_masks(model, X, keep):
    """The ReLU inputs of the plain two-hidden-layer net on the host, with the masks its seed draws."""
    p = {k: backend.to_numpy(v) for k, v in model.params.items()}
    h, inputs = backend.to_numpy(X), []
    for i in (1, 2):
        a = h @ p[f"W{i}"] + p[f"b{i}"]
        inputs.append(a)
        mask = backend.to_numpy(backend.Generator(model.seed).bernoulli(a.shape, p=keep, dtype="float64"))
        h = np.maximum(a, 0) * mask / keep
    return inputs


@pytest.mark.parametrize("keep", [1, 0.75, 0.5])
def test_dropout_with_a_seed_gives_one_function(bk, keep):
    # As in the course: with seed=123 every loss() call uses the same mask, so gradient checks work.
    X, y = _data(bk)
    model = _net(bk, dropout_keep_ratio=keep, seed=123)
    assert model.use_dropout == (keep != 1)
    # With zero biases, an example whose first-layer units are all dropped (or inactive) puts its
    # second-layer ReLU inputs at exactly 0, on the kink, where a centred difference measures half
    # a slope: biases away from 0 keep every ReLU input off it (checked with the masks drawn).
    biases = np.random.default_rng(1).uniform(0.1, 0.3, (2, max(H1, H2))) * [[1], [-1]]
    model.params["b1"], model.params["b2"] = bk.asarray(biases[0, :H1]), bk.asarray(biases[1, :H2])
    assert min(np.abs(a).min() for a in _relu_inputs_with_masks(model, X, keep)) > 1e-4
    _check_gradients(model, X, y, 1e-5)


def test_empty_hidden_dims_is_a_linear_softmax(bk):
    X, y = _data(bk)
    model = _net(bk, hidden_dims=[], reg=0.5)
    assert set(model.params) == {"W1", "b1"} and model.params["W1"].shape == (D, C)
    loss, grads = model.loss(X, y)
    W, b = backend.to_numpy(model.params["W1"]), backend.to_numpy(model.params["b1"])
    s = backend.to_numpy(X) @ W + b
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    yh = backend.to_numpy(y)
    want = -np.log(p[np.arange(N), yh]).mean() + 0.5 * 0.5 * np.sum(W * W)  # the course's 0.5 * reg
    assert abs(float(loss) - want) < 1e-12
    _check_gradients(model, X, y, 1e-6)


def test_scores_are_test_mode_and_predictions_agree(bk):
    X, _ = _data(bk, n=20)
    model = _net(bk, normalization="batchnorm", dropout_keep_ratio=0.5, seed=3)
    scores = model.loss(X)
    assert_placement(scores, backend=bk, shape=(20, C), dtype=bk.xp.float64)
    np.testing.assert_array_equal(backend.to_numpy(model.loss(X)), backend.to_numpy(scores))  # no dropout
    assert model.dropout_param["mode"] == "test" and model.bn_params[0]["mode"] == "test"
    np.testing.assert_array_equal(backend.to_numpy(model.predict(X)), backend.to_numpy(scores).argmax(1))
    probs = backend.to_numpy(model.predict_proba(X))
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-12)
    np.testing.assert_array_equal(probs.argmax(1), backend.to_numpy(scores).argmax(1))


def test_image_shaped_inputs_and_float64_data_to_a_float32_net(bk):
    rng = np.random.default_rng(0)
    X = bk.asarray(rng.standard_normal((4, 3, 2, 2)))
    model = FullyConnectedNet([5], input_dim=12, num_classes=3, seed=0, xp=bk)
    loss, grads = model.loss(X, bk.asarray(np.array([0, 1, 2, 1])))
    assert loss.dtype == bk.xp.float32 and all(g.dtype == bk.xp.float32 for g in grads.values())
    assert model.loss(X).shape == (4, 3)


def test_numpy_scalars_as_hyperparameters_keep_float32():
    model = FullyConnectedNet([5], input_dim=D, num_classes=C, reg=np.float64(0.1), weight_scale=np.float64(1e-2),
                              dropout_keep_ratio=np.float64(0.5), seed=0)
    assert type(model.reg) is float and type(model.weight_scale) is float
    assert all(p.dtype == np.float32 for p in model.params.values())
    X, y = _data(backend.get_backend("numpy"))
    loss, grads = model.loss(np.asarray(X, dtype=np.float32), y)
    assert loss.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())


def test_course_dtype_spellings():
    for dtype in (np.float64, np.dtype("float64"), "float64"):
        assert FullyConnectedNet([3], input_dim=2, dtype=dtype).params["W1"].dtype == np.float64
    assert FullyConnectedNet([3], input_dim=2).params["W1"].dtype == np.float32


def test_bad_arguments():
    for kwargs, err, match in [
        ({"hidden_dims": [100, 0]}, ValueError, r"hidden_dims\[1\] must be > 0"),
        ({"hidden_dims": [100, -5]}, ValueError, r"hidden_dims\[1\]"),
        ({"hidden_dims": [10.5]}, TypeError, r"hidden_dims\[0\] must be an integer"),
        ({"hidden_dims": 100}, TypeError, "list of layer sizes"),
        ({"normalization": "groupnorm"}, ValueError, "unknown normalization 'groupnorm'; choose one of"),
        ({"activation": "swish"}, ValueError, "unknown activation 'swish'; choose one of: relu"),
        ({"dropout_keep_ratio": 0}, ValueError, r"dropout_keep_ratio .* must be in \(0, 1\]"),
        ({"dropout_keep_ratio": 1.5}, ValueError, r"\(0, 1\]"),
        ({"init": "glorot"}, ValueError, "unknown init"),
        ({"reg": -1}, ValueError, "reg must be >= 0"),
        ({"weight_scale": 0}, ValueError, "weight_scale must be > 0"),
        ({"input_dim": 0}, ValueError, "input_dim"),
        ({"hidden_dims": [100000, 100000]}, ValueError, "parameters, more than"),
        ({"dtype": "int32"}, ValueError, "'float32' or 'float64'"),
    ]:
        kw = {"hidden_dims": [4], "input_dim": 3, **kwargs}
        with pytest.raises(err, match=match):
            FullyConnectedNet(kw.pop("hidden_dims"), **kw)


def test_bad_inputs_are_clear_errors():
    model = FullyConnectedNet([4], input_dim=3, num_classes=3, seed=0)
    X = np.zeros((2, 3), np.float32)
    for call, err, match in [
        (lambda: model.loss(np.zeros((2, 4), np.float32)), ValueError, r"shape \(N, 3\)"),
        (lambda: model.loss(X, np.array([0, 3])), ValueError, "out of range for 3 classes"),
        (lambda: model.loss(X, np.array([0, -1])), ValueError, "negative label"),
        (lambda: model.loss(X, np.array([0.0, 1.0])), TypeError, "integer class labels"),
        (lambda: model.loss(X, np.array([0, 1, 2])), ValueError, "one label per row"),
        (lambda: model.loss(np.array([[np.nan, 0, 0], [0, 0, 0]], np.float32)), ValueError, "NaN"),
        (lambda: model.predict(np.array([[np.inf, 0, 0]], np.float32)), ValueError, "NaN or infinite"),
        (lambda: model.predict_proba(np.array([[np.nan, 0, 0]], np.float32)), ValueError, "NaN"),
        (lambda: model.loss(np.zeros((2, 3), np.int64)), TypeError, "real floating"),
    ]:
        with pytest.raises(err, match=match):
            call()
    strict = backend.get_backend("array_api_strict", device="device1")
    with pytest.raises(backend.BackendMismatchError, match=r"backend\.to_backend\(X, net\.backend\)"):
        model.predict(strict.asarray(X))


def test_repr():
    model = FullyConnectedNet([4, 3], input_dim=5, normalization="batchnorm", dropout_keep_ratio=0.5)
    assert repr(model) == ("FullyConnectedNet([4, 3], input_dim=5, num_classes=10, dropout_keep_ratio=0.5, "
                           "normalization='batchnorm', dtype='float32', backend='numpy')")


def test_batch_norm_in_training_refuses_a_batch_of_one(bk):
    # The variance of one example is 0: the running variance would learn 0 and test mode divide by
    # sqrt(eps). Refused in training, with what to change; test mode takes a single example.
    rng = np.random.default_rng(0)
    X, y = bk.asarray(rng.standard_normal((1, 5)), dtype=bk.xp.float64), bk.asarray(np.array([1]))
    model = FullyConnectedNet([4], input_dim=5, num_classes=3, normalization="batchnorm", dtype="float64",
                              seed=0, xp=bk)
    with pytest.raises(ValueError, match="at least 2 examples per batch.*batch_size"):
        model.loss(X, y)
    assert tuple(model.loss(X).shape) == (1, 3)
    data = {"X_train": bk.asarray(rng.standard_normal((6, 5)), dtype=bk.xp.float64),
            "y_train": bk.asarray(rng.integers(0, 3, 6))}
    with pytest.raises(ValueError, match="at least 2 examples per batch"):
        Solver(model, data, batch_size=1, num_iters=2, verbose=False).train()
