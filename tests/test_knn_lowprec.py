"""The shim's low-precision product: offered only where its measured error meets the model the kNN
candidates' error bound assumes (inputs rounded to nearest, float32 accumulation), on the machine
the tests run on, and used by "auto" only where it was measured faster."""

import pytest

from xpml import backend
from xpml.backend import _lowprec


def test_exact_and_backends_without_a_fast_product(bk):
    assert backend.low_precision_product(bk.xp, bk.device, "exact") is None
    with pytest.raises(ValueError, match="precision must be one of"):
        backend.low_precision_product(bk.xp, bk.device, "float8")
    candidate = bk.adapter.low_precision_candidate(bk.xp, bk.device)
    checked = _lowprec._checked(bk.xp, bk.device)
    auto = backend.low_precision_product(bk.xp, bk.device, "auto")
    if candidate is None:  # numpy, strict, jax, cupy; torch without bfloat16 products here
        assert checked is None
    # "auto": only a product that met the error model here and was measured faster.
    assert auto is (checked if checked is not None and checked.default else None)
    if checked is None:
        with pytest.raises(ValueError, match="no bfloat16 product"):
            backend.low_precision_product(bk.xp, bk.device, "bfloat16")
    else:
        assert checked.name == "bfloat16" and backend.low_precision_product(bk.xp, bk.device, "bfloat16") is checked


def _simulated(matmul):
    """A product in float16 on NumPy (a format NumPy has), whose kernel is ``matmul``."""
    import numpy as np

    return _lowprec.LowPrecisionProduct("float16", 2.0**-11, 2.0**-14, 2.0**-24, False, matmul, np.float16)


def _rounded_inputs(a, b):
    import numpy as np

    return a.astype(np.float16).astype(np.float64), b.astype(np.float16).astype(np.float64)


def _obeys_the_model(a, b, out=None):  # inputs rounded to nearest, exact products, float32 result
    import numpy as np

    ra, rb = _rounded_inputs(a, b)
    return (ra @ rb).astype(np.float32)


def _plain_float32(a, b, out=None):  # no rounding of the inputs: more accurate than assumed
    return a @ b


def _low_accumulator(a, b, out=None):  # rounded inputs, but the sum kept in the narrow format
    import numpy as np

    ra, rb = _rounded_inputs(a, b)
    acc = np.zeros((a.shape[0], b.shape[1]), np.float16)
    for j in range(a.shape[1]):
        acc = (acc + np.outer(ra[:, j], rb[j, :]).astype(np.float16)).astype(np.float16)
    return acc.astype(np.float32)


def _truncating(a, b, out=None):  # inputs cut towards zero instead of rounded to nearest
    import numpy as np

    def cut(v):
        bits = v.astype(np.float32).view(np.uint32) & np.uint32(0xFFFFE000)  # keep 11 significant bits
        return bits.view(np.float32).astype(np.float64)

    return (cut(a) @ cut(b)).astype(np.float32)


def _slightly_off(a, b, out=None):  # within the model's bound, but not a quarter of it: no margin
    import numpy as np

    ra, rb = _rounded_inputs(a, b)
    dim = a.shape[1]
    bound = 2 * dim * 2.0**-24 * np.outer(np.linalg.norm(ra, axis=1), np.linalg.norm(rb, axis=0))
    return (ra @ rb + 0.5 * bound).astype(np.float32)


def _failing(a, b, out=None):
    raise RuntimeError("not on this build")


@pytest.mark.parametrize(("matmul", "accepted"), [
    (_obeys_the_model, True), (_plain_float32, True), (_low_accumulator, False), (_truncating, False),
    (_slightly_off, False), (_failing, False)])
def test_the_self_check_measures_the_error_model_the_proof_assumes(matmul, accepted):
    import array_api_compat.numpy as xp

    assert _lowprec._self_check(_simulated(matmul), xp, "cpu") is accepted


@pytest.mark.parametrize("matmul", [_low_accumulator, _truncating])
def test_a_product_that_breaks_the_model_falls_back_to_float32(monkeypatch, matmul):
    import array_api_compat.numpy as xp
    import numpy as np

    from xpml.backend import _registry
    from xpml.classifiers import KNearestNeighbor

    monkeypatch.setattr(_registry.adapter("numpy"), "low_precision_candidate", lambda xp, device: _simulated(matmul),
                        raising=False)
    _lowprec._checked.cache_clear()
    try:
        assert backend.low_precision_product(xp, "cpu", "auto") is None
        with pytest.raises(ValueError, match="no bfloat16 product"):
            backend.low_precision_product(xp, "cpu", "bfloat16")
        rng = np.random.default_rng(0)
        X, Q = rng.standard_normal((300, 40)).astype(np.float32), rng.standard_normal((20, 40)).astype(np.float32)
        knn = KNearestNeighbor().train(X, np.zeros(300, np.int64))
        d2 = ((Q[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1)
        np.testing.assert_array_equal(knn.kneighbors(Q, 5, return_distance=False),
                                      np.argsort(d2, axis=1, kind="stable")[:, :5])
        assert knn.last_search_.product == "float32"
    finally:
        _lowprec._checked.cache_clear()


def test_a_product_that_obeys_the_model_is_offered_and_auto_asks_the_clock(monkeypatch):
    import array_api_compat.numpy as xp

    from xpml.backend import _registry

    monkeypatch.setattr(_registry.adapter("numpy"), "low_precision_candidate",
                        lambda xp, device: _simulated(_obeys_the_model), raising=False)
    for faster in (False, True):
        monkeypatch.setattr(_lowprec, "_faster", lambda product, xp, device, faster=faster: faster)
        _lowprec._checked.cache_clear()
        try:
            product = backend.low_precision_product(xp, "cpu", "bfloat16")
            assert product is not None and product.default is faster
            assert (backend.low_precision_product(xp, "cpu", "auto") is product) is faster
        finally:
            _lowprec._checked.cache_clear()


def test_the_torch_product_here_passed_its_self_check_or_is_absent():
    # On any CPU: where torch offers a bfloat16 product, it is the one that met the error model on
    # this machine (measured again here); where it does not, there is none.
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as txp

    product = backend.low_precision_product(txp, torch.device("cpu"), "auto")
    candidate = _registry_adapter("torch").low_precision_candidate(txp, torch.device("cpu"))
    if candidate is None:
        assert product is None
        return
    checked = _lowprec._checked(txp, torch.device("cpu"))
    assert (checked is not None) is _lowprec._self_check(candidate, txp, torch.device("cpu"))
    assert torch.backends.mkldnn.matmul.fp32_precision == "none"  # the switch is put back
    if checked is not None:
        a, b = torch.rand(64, 512), torch.rand(512, 32)
        dead = torch.zeros(64, 32)
        again = checked.matmul(a, b, out=dead)  # written over an array the caller no longer needs
        assert again is dead and torch.equal(again, checked.matmul(a, b))


def _registry_adapter(name):
    from xpml.backend import _registry

    return _registry.adapter(name)


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
