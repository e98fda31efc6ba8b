"""The shim's low-precision product: offered only where it rounds inputs to nearest and keeps a
float32 result (the error bound of the kNN candidates assumes both), and only where asked."""

import pytest

from xpml import backend
from xpml.backend import _lowprec


def _cpu_has_bf16_products() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX-512-BF16), from the kernel's
    flags where Linux gives them, else from PyTorch's own probe."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        torch = pytest.importorskip("torch")
        return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def _expects_product(bk) -> bool:
    """Where "auto" must give a bfloat16 product: torch on such a CPU (CUDA: offered on request only)."""
    if bk.name != "torch" or getattr(bk.device, "type", None) != "cpu":
        return False
    import torch

    return torch.backends.mkldnn.is_available() and _cpu_has_bf16_products()


def test_exact_and_backends_without_a_fast_product(bk):
    assert backend.low_precision_product(bk.xp, bk.device, "exact") is None
    with pytest.raises(ValueError, match="precision must be one of"):
        backend.low_precision_product(bk.xp, bk.device, "float8")
    auto = backend.low_precision_product(bk.xp, bk.device, "auto")
    if not _expects_product(bk):  # numpy, strict, jax, cupy; torch on a CPU without bfloat16 products
        assert auto is None
        if not (bk.name == "torch" and bk.device.type == "cuda"):  # from Ampere on: offered on request
            with pytest.raises(ValueError, match="no bfloat16 product"):
                backend.low_precision_product(bk.xp, bk.device, "bfloat16")
        return
    assert auto is not None and auto.name == "bfloat16" and auto.default
    assert backend.low_precision_product(bk.xp, bk.device, "bfloat16") is auto


def _product(matmul):
    return _lowprec.LowPrecisionProduct("bfloat16", 2.0**-8, 2.0**-126, 2.0**-24, True, matmul, None)


def test_the_self_check_refuses_truncation_and_a_rounded_result():
    import array_api_strict as xp

    def exact(a, b, out=None):
        return a @ b

    def truncating(a, b, out=None):  # inputs cut to bfloat16 towards zero: 1 + 2**-8 + 2**-12 becomes 1
        return xp.floor(a) @ b

    def rounded_result(a, b, out=None):  # the float32 result rounded to 8 significant bits
        return xp.round((a @ b) / 4.0) * 4.0

    device = xp.__array_namespace_info__().default_device()
    assert _lowprec._self_check(_product(exact), xp, device)  # more accurate than assumed: fine
    assert not _lowprec._self_check(_product(truncating), xp, device)
    assert not _lowprec._self_check(_product(rounded_result), xp, device)

    def failing(a, b, out=None):
        raise RuntimeError("not on this build")

    assert not _lowprec._self_check(_product(failing), xp, device)


def test_torch_bfloat16_product_rounds_to_nearest_with_float32_accumulation():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as txp

    product = backend.low_precision_product(txp, torch.device("cpu"), "auto")
    if product is None:
        pytest.skip("no AMX or AVX-512-BF16 on this CPU")
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 200, generator=gen), torch.randn(200, 100, generator=gen)
    got = product.matmul(a, b).double()
    exact = product.round(a).double() @ product.round(b).double()
    scale = product.round(a).abs().double() @ product.round(b).abs().double()
    assert ((got - exact).abs() <= 2 * 200 * 2.0**-24 * scale).all()  # only the accumulation's error
    assert torch.backends.mkldnn.matmul.fp32_precision == "none"  # the switch is put back
    dead = torch.zeros(300, 100)
    again = product.matmul(a, b, out=dead)  # written over an array the caller no longer needs
    assert again is dead and torch.equal(again.double(), got)


def test_the_exact_product_ignores_a_global_reduced_precision_mode():
    torch = pytest.importorskip("torch")
    from xpml.classifiers import KNearestNeighbor

    c = 1.0 + 2.0**-8 + 2.0**-12
    a, b = torch.full((64, 256), c), torch.ones(256, 64)
    before = torch.backends.mkldnn.matmul.fp32_precision
    torch.set_float32_matmul_precision("medium")  # bfloat16 for float32 products on the CPU (oneDNN)
    try:
        assert float(backend.exact_matmul(a, b)[0, 0]) == 256 * c
        gen = torch.Generator().manual_seed(1)
        X, Q = torch.randn(500, 300, generator=gen), torch.randn(40, 300, generator=gen)
        knn = KNearestNeighbor(precision="exact").train(X, torch.zeros(500, dtype=torch.int64))
        d2 = ((Q[:, None, :].double() - X[None, :, :].double()) ** 2).sum(-1)
        assert (knn.kneighbors(Q, 5, return_distance=False) == torch.argsort(d2, dim=1, stable=True)[:, :5]).all()
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"  # the user's setting is put back
    finally:
        torch.set_float32_matmul_precision("highest")
        torch.backends.mkldnn.matmul.fp32_precision = before
