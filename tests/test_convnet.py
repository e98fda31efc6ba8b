"""ConvNet and ThreeLayerConvNet: the architecture grammar and its errors, sizes checked at build,
the VGG-16 table of the notes, gradients against numerical ones in float64 on every backend, FC
layers as convolutions, checkpoints and a Solver run."""

import pickle

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_close, assert_placement
from xpml.classifiers.gradient_check import eval_numerical_gradient, param_loss, rel_error
from xpml.nets import ConvNet, Solver, ThreeLayerConvNet, load_model, save_model
from xpml.nets.convnet import VGG16, Layer, parse_architecture, summarize


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
