"""ConvNet and ThreeLayerConvNet: the architecture grammar and its errors, sizes checked at build,
the VGG-16 table of the notes, gradients against numerical ones in float64 on every backend, FC
layers as convolutions, checkpoints and a Solver run."""

import pickle

import numpy as np
import pytest

from xpml import backend
from xpml.backend._compile import compiler
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers.gradient_check import eval_numerical_gradient, param_loss, rel_error
from xpml.nets import (
    ConvNet,
    Ensemble,
    FullyConnectedNet,
    Model,
    Solver,
    ThreeLayerConvNet,
    load_model,
    rules,
    save_model,
)
from xpml.nets.augment import Compose, RandomFlip, RandomShift
from xpml.nets.convnet import VGG16, Layer, parse_architecture, summarize

from ._readonly import READONLY_BACKEND, readonly_arrays


def _data(bk, n, shape, num_classes, seed=0, dtype="float64"):
    host = np.random.default_rng(seed)
    X = bk.asarray(host.standard_normal((n, *shape)).astype(dtype))
    y = bk.asarray(host.integers(0, num_classes, size=n))
    return X, y


# ---- grammar ------------------------------------------------------------------------------------------

def test_the_notes_notation_parses_with_its_defaults():
    conv, pool, fc, out = parse_architecture("CONV3-64 POOL2 FC-4096 FC-10")
    assert conv == Layer("conv", "CONV3-64", (3, 3), 64, stride=1, pad=1, dilation=1, relu=True)
    assert pool == Layer("pool", "POOL2", (2, 2), stride=2, relu=False)
    assert (fc.kind, fc.outputs, fc.relu) == ("fc", 4096, True)
    assert (out.kind, out.outputs, out.relu) == ("fc", 10, False)


def test_the_spelled_out_form_sets_every_option():
    conv, pool, fc, _ = parse_architecture("conv5x3-8/s2/p0/d2 GN4 DROP0.75 POOL3/s2 FC-20 BN DROP0.5 FC-3")
    assert (conv.size, conv.outputs, conv.stride, conv.pad, conv.dilation) == ((5, 3), 8, 2, 0, 2)
    assert (conv.norm, conv.groups, conv.keep) == ("groupnorm", 4, 0.75)
    assert (pool.size, pool.stride) == ((3, 3), 2)
    assert (fc.norm, fc.keep) == ("batchnorm", 0.5)
    assert parse_architecture("CONV5-8/d2 FC-2")[0].pad == 4  # 'same' padding of the dilated window
    assert not parse_architecture("CONV1-8/linear FC-2")[0].relu


def test_layers_print_back_to_what_parses_to_them():
    layers = parse_architecture("CONV3-8/s2/p0/d2 BN DROP0.5 POOL3/s2 CONV5x3-4 GN2 FC-20 BN FC-3")
    again = parse_architecture(" ".join(layer.text() for layer in layers))
    assert [dataclass_fields(a) for a in again] == [dataclass_fields(a) for a in layers]


def dataclass_fields(layer):
    return (layer.kind, layer.size, layer.outputs, layer.stride, layer.pad, layer.dilation, layer.relu, layer.norm,
            layer.groups, layer.keep)


@pytest.mark.parametrize(("text", "match"), [
    ("CONV3-64 POOL2 FC-10 XYZ", r"token 'XYZ' does not parse; expected CONV<F>-<K>"),
    ("CONV3 FC-10", r"token 'CONV3' does not parse; expected"),
    ("CONV3-64/x2 FC-10", r"token 'CONV3-64/x2': unknown option '/x2'; expected /s<stride>, /p<pad>, /d<dilation>"),
    ("POOL2/p1 FC-10", r"token 'POOL2/p1': unknown option '/p1'; expected /s<stride>"),
    ("CONV3-8 POOL2", r"must end with an FC layer giving the class scores \(e.g. FC-10\), not 'POOL2'"),
    ("BN CONV3-8 FC-10", r"token 'BN': a normalization needs a CONV or FC layer before it"),
    ("CONV3-8 POOL2 BN FC-10", r"token 'BN' must follow a CONV or FC without a normalization, not 'POOL2'"),
    ("FC-20 GN2 FC-10", r"token 'GN2': group normalization needs a CONV before it"),
    ("FC-20 CONV3-8 FC-10", r"token 'CONV3-8': a CONV cannot follow an FC layer"),
    ("CONV3-8 DROP1.5 FC-10", r"keep probability of 'DROP1.5' .* must be in \(0, 1\]"),
    ("CONV3-0 FC-10", r"token 'CONV3-0': the outputs must be at least 1"),
    ("CONV3-8/s0 FC-10", r"token 'CONV3-8/s0': the stride must be at least 1"),
    ("CONV3-8 FC-10 DROP0.5", r"last FC layer 'FC-10' gives the class scores"),
    ("", "architecture is empty"),
])
def test_bad_architectures_name_the_token_and_what_was_expected(text, match):
    with pytest.raises(ValueError, match=match):
        parse_architecture(text)


@pytest.mark.parametrize(("text", "input_dim", "match"), [
    ("CONV3-8/s2 FC-10", (3, 8, 8), r"layer 1 \(CONV3-8/s2\): \(W - F \+ 2P\) / S \+ 1 = \(8 - 3 \+ 2 \* 1\) / 2 \+ 1 "
                                     r"= 4.5 is not an integer"),
    ("CONV3-8 POOL2 POOL2 FC-10", (3, 6, 6), r"layer 3 \(POOL2\): .*\(3 - 2 \+ 2 \* 0\) / 2 \+ 1 = 1.5"),
    ("CONV7-8/p0 FC-10", (3, 5, 5), r"layer 1 \(CONV7-8/p0\): a window of 7 .* larger than the padded input height 5"),
    ("CONV3-6 GN4 FC-10", (3, 5, 5), r"layer 1 \(CONV3-6\): GN4 needs a number of groups that divides the 6"),
])
def test_sizes_are_checked_when_the_net_is_built(text, input_dim, match):
    with pytest.raises(ValueError, match=match):
        ConvNet(text, input_dim)


def test_input_dim_must_be_an_image_shape():
    with pytest.raises(ValueError, match=r"input_dim must be \(C, H, W\)"):
        ConvNet("CONV3-8 FC-10", 3072)


# ---- summary ------------------------------------------------------------------------------------------

def test_the_vgg16_table_of_the_notes():
    s = summarize(VGG16, (3, 224, 224))
    assert s.total_params == 138_357_544
    assert s.total_weights == 138_344_128
    # The notes' rows add up to 15.2M values per image (their "24M" total disagrees with them).
    assert s.total_activations == 15_237_608
    assert s.total_memory == 4 * 15_237_608
    first = s.rows[1]
    assert first == dict(name="CONV3-64", output_shape=(64, 224, 224), activations=224 * 224 * 64,
                         params=1_792, weights=1_728, mult_adds=224 * 224 * 64 * 27)
    assert s.rows[-3]["weights"] == 7 * 7 * 512 * 4096
    assert s.rows[0]["activations"] == 150_528
    table = str(s)
    assert "138,357,544" in table and "FC-4096" in table


def test_a_net_summarizes_its_own_parameters(bk):
    net = ConvNet("CONV3-4 BN POOL2 FC-5 FC-3", (2, 6, 6), xp=bk, seed=0)
    s = net.summary()
    assert s.total_params == sum(int(np.prod(v.shape)) for v in net.params.values())
    assert [r["output_shape"] for r in s.rows] == [(2, 6, 6), (4, 6, 6), (4, 3, 3), (5,), (3,)]


# ---- the nets -----------------------------------------------------------------------------------------

def _check_gradients(net, X, y):
    loss, grads = net.loss(X, y)
    assert set(grads) == set(net.params)
    for name, p in net.params.items():
        assert_placement(grads[name], like=p)
        num = eval_numerical_gradient(param_loss(net, name, X, y), p, verbose=False, h=1e-6)
        num, got = backend.to_numpy(num), backend.to_numpy(grads[name])
        # A bias right before a normalization has a zero gradient: compare it absolutely.
        assert rel_error(got, num) < 1e-6 or np.max(np.abs(got - num)) < 1e-9, name
    return loss


def test_convnet_gradients_match_numerical_ones(bk):
    # Tiny: every parameter is perturbed twice, and each loss costs a forward pass.
    net = ConvNet("CONV3-2/d2/p2 GN1 POOL2 FC-3 BN DROP0.75 FC-2", (1, 4, 4), reg=0.1, weight_scale=0.3,
                  dtype="float64", seed=0, xp=bk)
    X, y = _data(bk, 3, (1, 4, 4), 2)
    loss = _check_gradients(net, X, y)
    assert_placement(loss, backend=bk, shape=(), dtype=bk.xp.float64)


def test_three_layer_convnet_has_the_course_parameters_and_gradients(bk):
    net = ThreeLayerConvNet(input_dim=(1, 4, 4), num_filters=2, filter_size=3, hidden_dim=3, num_classes=2,
                            weight_scale=0.3, reg=0.05, dtype="float64", seed=0, xp=bk)
    assert {k: tuple(v.shape) for k, v in net.params.items()} == {
        "W1": (2, 1, 3, 3), "b1": (2,), "W2": (2 * 2 * 2, 3), "b2": (3,), "W3": (3, 2), "b3": (2,)}
    X, y = _data(bk, 2, (1, 4, 4), 2)
    _check_gradients(net, X, y)
    scores = net.loss(X)
    assert_placement(scores, backend=bk, shape=(2, 2), dtype=bk.xp.float64)


def test_three_layer_convnet_defaults_are_the_assignments():
    net = ThreeLayerConvNet(seed=0)
    assert {k: tuple(v.shape) for k, v in net.params.items()} == {
        "W1": (32, 3, 7, 7), "b1": (32,), "W2": (32 * 16 * 16, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
    assert net.dtype_name == "float32"
    # The notebook's sanity check: small weights, no regularization, loss close to log(10).
    X, y = _data(backend.get_backend("numpy"), 2, (3, 32, 32), 10, dtype="float32")
    loss, _ = net.loss(X, y)
    assert abs(float(loss) - np.log(10)) < 0.01


def test_flattened_inputs_are_accepted_and_bad_shapes_refused():
    net = ConvNet("CONV3-2 FC-3", (1, 4, 4), seed=0, dtype="float64")
    X, _ = _data(backend.get_backend("numpy"), 2, (1, 4, 4), 3)
    assert_close(net.loss(np.reshape(X, (2, 16))), net.loss(X))
    with pytest.raises(ValueError, match=r"X must have shape \(N, 16\)"):
        net.loss(np.zeros((2, 1, 4, 5)))


def test_the_convolutional_form_scores_every_crop_in_one_pass(bk):
    # Unpadded convolutions: a crop of a larger image then sees exactly what the net sees alone.
    net = ConvNet("CONV3-3/p0 BN POOL2 CONV3-4/p0 FC-5 FC-3", (2, 10, 10), weight_scale=0.5, dtype="float64",
                  seed=0, xp=bk)
    X, y = _data(bk, 4, (2, 10, 10), 3)
    net.loss(X, y)  # a training step, so the running statistics are not trivial
    conv = net.convolutional()
    big, _ = _data(bk, 2, (2, 14, 16), 3, seed=1)
    smap = conv.score_map(big)
    assert_placement(smap, backend=bk, shape=(2, 3, 3, 4), dtype=bk.xp.float64)
    for i in range(3):
        for j in range(4):
            crop = big[:, :, 2 * i:2 * i + 10, 2 * j:2 * j + 10]
            assert_close(smap[:, :, i, j], net.loss(crop), rtol=1e-10, atol=1e-12)
    assert float(bk.xp.max(bk.xp.abs(smap))) > 0.0
    # On the original size it is the same net.
    assert_close(conv.loss(X), net.loss(X), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"layer 2 \(POOL2\)"):
        conv.score_map(_data(bk, 1, (2, 13, 14), 3)[0])


# ---- checkpoints and training -------------------------------------------------------------------------

def test_checkpoints_and_pickles_restore_the_same_net(tmp_path):
    bk = backend.get_backend("numpy")
    for net in (ConvNet("CONV3-3 BN POOL2 FC-4 DROP0.5 FC-3", (2, 4, 4), seed=0, dtype="float64"),
                ThreeLayerConvNet((2, 4, 4), 2, 3, 4, 3, seed=0, dtype="float64")):
        X, y = _data(bk, 3, (2, 4, 4), 3)
        net.loss(X, y)
        path = tmp_path / f"{type(net).__name__}.npz"
        save_model(path, net)
        loaded, _ = load_model(path)
        assert type(loaded) is type(net)
        assert_close(loaded.loss(X), net.loss(X))
        assert_close(pickle.loads(pickle.dumps(net)).loss(X), net.loss(X))


def test_the_solver_overfits_fifty_examples_the_same_way_on_two_backends():
    # Torch and JAX give the same run too (checked by hand: 2.98 -> 0.102, accuracy 1.0), but
    # their first compiled steps cost tens of seconds here.
    histories = []
    for backend_id in ("numpy", "array_api_strict"):
        bk = backend.get_backend(backend_id)
        X, y = _data(bk, 50, (3, 8, 8), 5, dtype="float32")
        net = ConvNet("CONV3-8 POOL2 FC-32 FC-5", (3, 8, 8), init="he", seed=0, xp=bk)
        solver = Solver(net, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, update_rule="adam",
                        optim_config={"learning_rate": 5e-3}, num_epochs=30, batch_size=25, verbose=False, seed=0)
        solver.train()
        assert solver.loss_history[-1] < solver.loss_history[0] / 4
        assert solver.train_acc_history[-1] == 1.0
        histories.append(np.asarray(solver.loss_history, dtype=np.float64))
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-4)


# ---- the model contract -------------------------------------------------------------------------------

# A tiny net with every kind of layer the contract threads something through: spatial batch norm
# (state), dropout (masks from the generator), pooling and an FC head.
TINY = "CONV3-4 BN POOL2 FC-8 DROP0.75 FC-3"
TINY_INPUT = (2, 6, 6)


def _tiny(bk, dtype="float32", seed=0, **kw):
    return ConvNet(TINY, TINY_INPUT, reg=1e-3, weight_scale=0.3, dtype=dtype, seed=seed, xp=bk, **kw)


def _host(tree):
    return {k: backend.to_numpy(v).copy() for k, v in tree.items()}


def _train(bk, dtype="float32", *, compile=True, num_iters=6, **kw):
    """A tiny ConvNet trained a few Solver steps on ``bk``: (net, solver)."""
    X, y = _data(bk, 24, TINY_INPUT, 3, dtype=dtype)
    net = _tiny(bk, dtype)
    solver = Solver(net, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, update_rule="sgd_momentum",
                    optim_config={"learning_rate": 0.05}, batch_size=8, num_iters=num_iters, verbose=False, seed=3,
                    compile=compile, **kw)
    solver.train()
    return net, solver


def test_a_convnet_is_a_model_and_its_loss_and_grads_is_pure(bk):
    net = _tiny(bk, "float64")
    assert isinstance(net, Model) and isinstance(ThreeLayerConvNet(seed=0, xp=bk), Model)
    assert set(net.state) == {"bn1/running_mean", "bn1/running_var"}
    X, y = _data(bk, 4, TINY_INPUT, 3)
    params, state = _host(net.params), _host(net.state)
    loss, grads, new_state = net.loss_and_grads(net.params, X, y, state=net.state, rng=backend.Generator(1, xp=bk))
    assert_placement(loss, backend=bk, shape=(), dtype=bk.xp.float64)
    assert set(grads) == set(net.params)
    for k, v in new_state.items():
        assert_placement(v, like=net.state[k])
    # Nothing it was given changed; the batch moved the running statistics in the new state.
    for k, v in _host(net.params).items():
        np.testing.assert_array_equal(v, params[k])
    for k, v in _host(net.state).items():
        np.testing.assert_array_equal(v, state[k])
    assert np.max(np.abs(backend.to_numpy(new_state["bn1/running_mean"]))) > 0
    # Test mode: the running statistics are used and kept, and the loss is that of the scores.
    loss_t, _, kept = net.loss_and_grads(net.params, X, y, state=new_state, training=False)
    assert all(kept[k] is new_state[k] for k in new_state)
    scores = backend.to_numpy(net.scores(net.params, X, state=new_state))
    s = scores - scores.max(axis=1, keepdims=True)
    ref = -np.mean(s[np.arange(4), backend.to_numpy(y)] - np.log(np.exp(s).sum(axis=1)))
    ref += 0.5 * net.reg * sum(float(np.sum(w ** 2)) for k, w in params.items() if k.startswith("W"))
    assert abs(float(backend.to_numpy(loss_t)) - ref) < 1e-12
    # The course face stores the new statistics back.
    net.loss(X, y)
    np.testing.assert_allclose(backend.to_numpy(net.state["bn1/running_var"]),
                               backend.to_numpy(new_state["bn1/running_var"]), rtol=1e-12)


def test_the_init_state_is_zero_running_statistics(bk):
    net = _tiny(bk)
    fresh = net.init_state()
    assert set(fresh) == set(net.state)
    for v in fresh.values():
        assert_placement(v, backend=bk, shape=(4,), dtype=bk.xp.float32)
        assert not np.any(backend.to_numpy(v))
    assert ConvNet("CONV3-2 FC-2", (1, 4, 4), xp=bk).init_state() == {}


@pytest.mark.readonly_backend
def test_the_solver_trains_a_convnet_on_the_contract(bk):
    net, solver = _train(bk, num_iters=12)
    assert solver._impl is net  # no adapter: the Solver calls the contract itself
    assert (solver._compiled is not None) == (compiler(bk) is not None)
    assert np.isfinite(solver.loss_history).all()
    assert np.mean(solver.loss_history[-3:]) < solver.loss_history[0]
    for v in net.state.values():
        assert_placement(v, backend=bk, shape=(4,), dtype=bk.xp.float32)
    assert np.max(np.abs(backend.to_numpy(net.state["bn1/running_mean"]))) > 0


def test_the_same_seed_gives_the_same_run_on_every_backend(bk):
    # float64, so that what differs is only the order of the sums: the masks, minibatches and
    # initial weights are the same draws everywhere.
    net, solver = _train(bk, "float64")
    ref_net, ref = _train(backend.get_backend("numpy"), "float64")
    np.testing.assert_allclose(solver.loss_history, ref.loss_history, rtol=1e-9)
    for k, v in _host(ref_net.params).items():
        np.testing.assert_allclose(backend.to_numpy(net.params[k]), v, rtol=1e-8, atol=1e-12, err_msg=k)
    for k, v in _host(ref_net.state).items():
        np.testing.assert_allclose(backend.to_numpy(net.state[k]), v, rtol=1e-8, atol=1e-12, err_msg=k)


def test_the_compiled_step_and_the_eager_one_agree(bk):
    if compiler(bk) is None:
        pytest.skip(f"{bk.label} has no compiler: its step is the eager one")
    for dtype, rtol, atol in (("float32", 2e-4, 1e-6), ("float64", 1e-10, 1e-13)):
        compiled_net, compiled = _train(bk, dtype, compile=True)
        eager_net, eager = _train(bk, dtype, compile=False)
        assert compiled._compiled.traces == 1 and eager._compiled is None
        np.testing.assert_allclose(compiled.loss_history, eager.loss_history, rtol=rtol, err_msg=dtype)
        for k, v in _host(eager_net.params).items():
            np.testing.assert_allclose(backend.to_numpy(compiled_net.params[k]), v, rtol=rtol, atol=atol, err_msg=k)
        for k, v in _host(eager_net.state).items():
            np.testing.assert_allclose(backend.to_numpy(compiled_net.state[k]), v, rtol=rtol, atol=atol, err_msg=k)


def test_in_place_and_functional_training_agree_bitwise(monkeypatch):
    # On NumPy the Solver updates parameters in place; on read-only arrays every update and every
    # running statistic is a new array. Same seed, same operations: the very same numbers.
    def run(bk):
        net, solver = _train(bk, transforms=[rules.l2(1e-3)])
        return _host(net.params) | {f"state/{k}": v for k, v in _host(net.state).items()}, solver.loss_history

    fast, fast_losses = run(backend.get_backend("numpy"))
    with readonly_arrays(monkeypatch):
        functional, functional_losses = run(READONLY_BACKEND)
    assert fast.keys() == functional.keys()
    for k in fast:
        np.testing.assert_array_equal(functional[k], fast[k], err_msg=k)
    assert functional_losses == fast_losses


def test_ensembles_of_convnets_from_checkpoints_and_from_seeds_predict(bk, tmp_path):
    X, y = _data(bk, 24, TINY_INPUT, 3, dtype="float32")
    net = _tiny(bk)
    Solver(net, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, update_rule="adam", batch_size=8,
           num_epochs=2, verbose=False, checkpoint_name=tmp_path / "tiny").train()
    from_checkpoints = Ensemble.from_checkpoints(tmp_path / "tiny", last=2, xp=bk)
    assert len(from_checkpoints.models) == 2
    assert all(isinstance(m, ConvNet) and m.state for m in from_checkpoints.models)
    from_seeds = Ensemble([_tiny(bk, seed=s) for s in range(3)])
    for ensemble in (from_checkpoints, from_seeds):
        proba = ensemble.predict_proba(X)
        assert_placement(proba, backend=bk, shape=(24, 3), dtype=bk.xp.float32)
        mean = np.mean([backend.to_numpy(m.predict_proba(X)) for m in ensemble.models], axis=0)
        np.testing.assert_allclose(backend.to_numpy(proba), mean, rtol=1e-5, atol=1e-7)
        labels = ensemble.predict(X)
        assert_placement(labels, backend=bk, shape=(24,))
        np.testing.assert_array_equal(backend.to_numpy(labels), mean.argmax(axis=1))


def test_augmentations_take_image_batches_and_train_a_convnet(bk):
    X, y = _data(bk, 24, TINY_INPUT, 3, dtype="float32")
    C, H, W = TINY_INPUT
    host = backend.to_numpy(X)
    flipped = RandomFlip((H, W, C), channels_last=False, p=1.0)(X, backend.Generator(0, xp=bk))
    assert_placement(flipped, like=X)
    np.testing.assert_array_equal(backend.to_numpy(flipped), host[..., ::-1])
    shift = RandomShift((H, W, C), channels_last=False, max_shift=2)
    shifted = backend.to_numpy(shift(X, backend.Generator(0, xp=bk)))
    assert shifted.shape == host.shape
    # Each image is its original, translated, with zeros shifted in.
    padded = np.pad(host, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(host.shape[0]):
        assert any(np.array_equal(shifted[i], padded[i, :, a:a + H, b:b + W]) for a in range(5) for b in range(5))
    net = _tiny(bk)
    before = _host(net.params)
    solver = Solver(net, {"X_train": X, "y_train": y}, update_rule="adam", batch_size=8, num_iters=4, verbose=False,
                    augment=Compose([shift, RandomFlip((H, W, C), channels_last=False)]), seed=0)
    solver.train()
    assert np.isfinite(solver.loss_history).all()
    assert any(not np.array_equal(backend.to_numpy(net.params[k]), v) for k, v in before.items())


def test_state_travels_through_checkpoints_and_load_params(bk, tmp_path):
    net, _ = _train(bk)
    path = tmp_path / "tiny.npz"
    save_model(path, net)
    loaded, _ = load_model(path, xp=bk)
    for k, v in net.state.items():
        assert_placement(loaded.state[k], like=v)
        np.testing.assert_array_equal(backend.to_numpy(loaded.state[k]), backend.to_numpy(v))
    fresh = _tiny(bk, seed=7)
    fresh.load_params(path)
    X, _ = _data(bk, 5, TINY_INPUT, 3, dtype="float32")
    assert_close(fresh.loss(X), net.loss(X))


@pytest.mark.parametrize(("other", "match"), [
    (lambda: ConvNet("CONV3-4 BN POOL2 FC-16 FC-3", TINY_INPUT, seed=0),
     r"layer 3 \(FC-8\) of this ConvNet needs W2 of shape \(36, 8\); the checkpoint \(a ConvNet\) holds \(36, 16\)"),
    (lambda: ConvNet("CONV5-4 BN POOL2 FC-8 FC-3", TINY_INPUT, seed=0),
     r"layer 1 \(CONV3-4\) of this ConvNet needs W1 of shape \(4, 2, 3, 3\); .* holds \(4, 2, 5, 5\)"),
    (lambda: ConvNet("CONV3-4 POOL2 FC-8 FC-3", TINY_INPUT, seed=0),
     r"layer 1 \(CONV3-4\) of this ConvNet needs gamma1 of shape \(4,\); the checkpoint .* lacks it"),
    (lambda: FullyConnectedNet([8], input_dim=72, num_classes=3, seed=0),
     r"layer 1 \(CONV3-4\) .* needs W1 of shape \(4, 2, 3, 3\); the checkpoint \(a FullyConnectedNet\) holds"),
    (lambda: ConvNet("CONV3-4 BN POOL2 FC-8 BN FC-3", TINY_INPUT, seed=0),
     r"has beta2, bn2/running_mean, bn2/running_var, gamma2, which this net lacks"),
])
def test_a_checkpoint_of_another_architecture_is_refused_naming_the_layer(tmp_path, other, match):
    path = tmp_path / "other.npz"
    save_model(path, other())
    net = _tiny(backend.get_backend("numpy"))
    before = _host(net.params)
    with pytest.raises(ValueError, match=match):
        net.load_params(path)
    for k, v in _host(net.params).items():  # nothing half-loaded
        np.testing.assert_array_equal(v, before[k])
