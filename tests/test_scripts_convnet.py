"""`xpml train convnet` and `xpml search convnet` on tiny data: flags, image layout, run folder, errors."""

import json

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.cli import _datasets, _models, search, train

from ._scripts_support import TINY, assert_png

ARCH = ["--architecture", "CONV3-4 BN POOL2 FC-10"]
QUICK = ["--num-iters", "12", "--batch-size", "50"]


def _train(tmp_path, capsys, *args):
    out = tmp_path / "run"
    rc = train.main([*TINY, "--out", str(out), "--quiet", *args])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return out, captured.out, json.loads((out / "results.json").read_text())


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_train_convnet_on_the_digits_on_every_backend(bk, tmp_path, capsys):
    out, stdout, r = _train(tmp_path, capsys, "convnet", *ARCH, *QUICK, "--learning-rate", "0.02", "--reg", "0.001",
                            "--update-rule", "momentum", "--backend", bk.label)
    run = r["models"]["convnet"]
    hp = run["hyperparameters"]
    assert (hp["architecture"], hp["learning_rate"], hp["reg"], hp["update_rule"], hp["num_iters"],
            hp["batch_size"]) == ("CONV3-4 BN POOL2 FC-10", 0.02, 0.001, "momentum", 12, 50)
    assert "arch=CONV3-4 BN POOL2 FC-10" in stdout and bk.label in stdout
    assert set(run["files"]) == {"curves", "checkpoint", "weights"}
    for f in run["files"].values():
        if f.endswith(".png"):
            assert_png(out / f)
    assert len(run["history"]["loss_history"]) == 12

    from xpml.nets import ConvNet, load_model

    net, info = load_model(out / "convnet.npz", xp=bk)
    assert isinstance(net, ConvNet) and net.image_shape == (1, 8, 8)
    assert net.params["W1"].shape == (4, 1, 3, 3) and info["hyperparams"]["architecture"] == "CONV3-4 BN POOL2 FC-10"
    # The checkpoint, fed the same images as the run, gives the run's validation accuracy: the rows
    # of the run folder's data reach the net in the layout it was trained on.
    data = _datasets.load_dataset("digits", bk, num_train=150, num_val=60, num_test=60)
    fit = _models.Fit("convnet", hp, net, None, None, 0.0, 0.0)
    assert _models.evaluate(fit, data, "val") == run["val_acc"]


def test_a_plain_train_leaves_the_convnet_out_and_naming_it_trains_it():
    assert train.parse_models([]) == train.parse_models(["all"]) == list(_models.MODELS)
    assert "convnet" not in _models.MODELS and train.parse_models(["convnet", "fc"]) == ["convnet", "fc"]


def test_default_architecture_per_dataset_fits_its_images():
    from xpml.nets.convnet import summarize

    for dataset, shape in (("digits", (1, 8, 8)), ("cifar10", (3, 32, 32))):
        arch = _models.defaults(dataset, "convnet")["architecture"]
        rows = summarize(arch, shape).rows
        assert rows[-1]["output_shape"][-1] == 10, dataset
    small = summarize(_models.defaults("digits", "convnet")["architecture"], (1, 8, 8))
    assert small.total_params < 5_000  # the default run on the digits stays quick


def _image_rows(images):
    """(N, C, H, W) images as the rows a Dataset holds: flattened in (height, width, channel) order."""
    return np.ascontiguousarray(np.transpose(images, (0, 2, 3, 1))).reshape(images.shape[0], -1)


@pytest.mark.parametrize("channels", [1, 3])
def test_rows_become_images_in_channel_first_order(bk, channels):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((5, channels, 4, 6)).astype(np.float32)
    rows = bk.asarray(_image_rows(images))
    y = bk.asarray(np.arange(5))
    data = _datasets.Dataset("pictures", rows, y, rows, y, rows, y, class_names=tuple("ab"),
                             image_shape=(4, 6, channels))
    got = _models._images(data, "val")
    assert_placement(got, backend=bk, shape=images.shape)
    np.testing.assert_array_equal(backend.to_numpy(got), images)
    assert _models._images(data, "val") is got  # made once per split


def test_filter_picture_tiles_each_filter_as_an_image(bk):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((5, 3, 2, 4)).astype(np.float32)
    grid = _models.conv_filter_images(bk.asarray(W))
    assert_placement(grid, backend=bk)
    grid = backend.to_numpy(grid)
    assert grid.shape == (3 * 3 - 1, 3 * 5 - 1, 3)  # 3 x 3 tiles of 2 x 4 pixels, 1 pixel apart
    for j in range(5):
        r, c = divmod(j, 3)
        want = np.transpose(W[j], (1, 2, 0))
        want = 255 * (want - want.min()) / (want.max() - want.min())
        np.testing.assert_allclose(grid[3 * r: 3 * r + 2, 5 * c: 5 * c + 4], want, rtol=1e-5, atol=1e-3)


def test_train_convnet_on_cifar10_files(tmp_path, capsys):
    from ._cifar_files import write_cifar

    write_cifar(str(tmp_path / "data"), n_per_batch=8, n_test=6, checksums=True)
    out, _, r = _train(tmp_path, capsys, "convnet", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"),
                       "--num-train", "30", "--num-val", "10", "--num-test", "6",
                       "--architecture", "CONV4-2/s4/p0 POOL2 FC-10", "--num-iters", "2", "--batch-size", "10")
    from xpml.nets import load_model

    net, _ = load_model(out / r["models"]["convnet"]["files"]["checkpoint"])
    assert net.image_shape == (3, 32, 32) and net.params["W1"].shape == (2, 3, 4, 4)
    assert_png(out / r["models"]["convnet"]["files"]["weights"])


@pytest.mark.parametrize("args,message", [
    (["convnet", "--dataset", "spiral"], "convnet trains on images"),
    (["convnet", "--architecture", "CONV3-8 POOL2"], "must end with an FC layer"),
    (["convnet", "--architecture", "CONV3-8 POLL2 FC-10"], "'POLL2' does not parse"),
    (["convnet", "--architecture", "CONV3-4 FC-5", "--num-iters", "1"], "FC-5, 5 class scores"),
    (["convnet", "--architecture", "CONV3-4/s3 FC-10", "--num-iters", "1"], "CONV3-4/s3"),
    (["convnet", "--normalization", "batchnorm"], "--normalization applies to fc"),
    (["fc", "--architecture", "CONV3-4 FC-10"], "--architecture applies to convnet"),
])
def test_bad_convnet_flags_are_one_line(tmp_path, capsys, args, message):
    assert train.main([*TINY, *args, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert message in _one_error_line(capsys)


def test_search_convnet(tmp_path, capsys):
    out = tmp_path / "s"
    rc = search.main(["convnet", *TINY, *ARCH, "--num-iters", "8", "--trials", "2", "--fine-trials", "1",
                      "--lr-range", "1e-3", "1e-2", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    r = json.loads((out / "results.json").read_text())
    assert r["complete"] and r["model"] == "convnet" and len(r["trials"]) == 3
    for t in r["trials"]:
        assert 1e-3 <= t["hyperparameters"]["learning_rate"] <= 1e-2
        assert t["hyperparameters"]["architecture"] == "CONV3-4 BN POOL2 FC-10"
    files = r["best"]["files"]
    assert_png(out / files["weights"]) and (out / files["checkpoint"]).is_file()


def test_search_convnet_on_the_spiral_is_one_line(tmp_path, capsys):
    assert search.main(["convnet", "--dataset", "spiral", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "convnet trains on images" in _one_error_line(capsys)


def test_bench_convnet_builds_the_same_net_and_counts_its_products():
    import importlib.util

    from xpml.nets.convnet import summarize

    from ._scripts_support import SCRIPTS

    spec = importlib.util.spec_from_file_location("bench_convnet", SCRIPTS / "bench_convnet.py")
    bench_convnet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_convnet)

    arch = "CONV3-4 CONV3-6 POOL2 FC-7 FC-10"
    net = bench_convnet._torch_layers(arch)
    assert sum(p.numel() for p in net.parameters()) == summarize(arch, (3, 32, 32)).total_params
    B = 2
    # conv1: forward and dW (no dx for the input); conv2: forward, dW and dx; the FCs: three each.
    want = [(4, 27, B * 1024), (4, B * 1024, 27), (6, 36, B * 1024), (6, B * 1024, 36), (36, 6, B * 1024),
            (B, 6 * 16 * 16, 7), (6 * 16 * 16, B, 7), (B, 7, 6 * 16 * 16), (B, 7, 10), (7, B, 10), (B, 10, 7)]
    assert bench_convnet._gemm_shapes(arch, B) == want


def test_reproduce_convnet_on_tiny_cifar_files(tmp_path):
    from ._cifar_files import write_cifar
    from ._scripts_support import run_script

    write_cifar(str(tmp_path / "data"), n_per_batch=8, n_test=6, checksums=True)
    proc = run_script("reproduce_convnet.py", "--data-dir", tmp_path / "data", "--out", tmp_path / "out",
                      "--runs", tmp_path / "runs", "--set", "num_epochs=1", "num_train=30", "num_val=10", "num_test=6",
                      "batch_size=10", 'architecture="CONV3-2 POOL2 FC-10"', "shift=2")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    final = lines[-1]
    assert final["architecture"] == "CONV3-2 POOL2 FC-10" and 0 <= final["test_acc"] <= 1
    assert final["machine"] and final["seconds"] >= 0 and lines[-2]["epoch"] == 1
    assert_png(tmp_path / "out" / "convnet_filters.png")
    assert (tmp_path / "runs" / "convnet.npz").is_file()
