"""Preprocessing: statistics from the training data, applied to other splits, on its device."""

import numpy as np
import pytest

from xpml import backend
from xpml.backend.testing import assert_placement
from xpml.nets import PCA, MeanSubtraction, Standardization


def _splits(bk, dtype="float64"):
    rng = backend.Generator(0, xp=bk)
    mix = rng.normal((5, 5), dtype=dtype)
    Xtr = rng.normal((200, 5), dtype=dtype) @ mix + 3.0
    Xte = rng.normal((30, 5), dtype=dtype) @ mix + 3.0
    return Xtr, Xte


def test_mean_subtraction_and_standardization(bk):
    Xtr, Xte = _splits(bk)
    h_tr, h_te = backend.to_numpy(Xtr), backend.to_numpy(Xte)
    ms = MeanSubtraction().fit(Xtr)
    assert_placement(ms.mean_, backend=bk, shape=(5,))
    out = ms.transform(Xte)
    assert_placement(out, like=Xte)
    np.testing.assert_allclose(backend.to_numpy(out), h_te - h_tr.mean(0), rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(ms.inverse_transform(out)), h_te, rtol=1e-12)
    st = Standardization()
    z = backend.to_numpy(st.fit_transform(Xtr))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(st.transform(Xte)), (h_te - h_tr.mean(0)) / h_tr.std(0), rtol=1e-6)


def test_pca_matches_svd_and_whitens(bk):
    Xtr, Xte = _splits(bk)
    h_tr = backend.to_numpy(Xtr)
    pca = PCA(n_components=3).fit(Xtr)
    assert_placement(pca.components_, backend=bk, shape=(5, 3))
    Xc = h_tr - h_tr.mean(0)
    U, S, _ = np.linalg.svd(Xc.T @ Xc / Xc.shape[0])
    np.testing.assert_allclose(backend.to_numpy(pca.explained_variance_), S[:3], rtol=1e-10)
    # Eigenvectors are defined up to sign: compare |U^T U_ref|, which is the identity.
    np.testing.assert_allclose(np.abs(backend.to_numpy(pca.components_).T @ U[:, :3]), np.eye(3), atol=1e-8)
    assert_placement(pca.transform(Xte), backend=bk, shape=(30, 3))
    white = backend.to_numpy(PCA(whiten=True, eps=0.0).fit_transform(Xtr))
    np.testing.assert_allclose(white.T @ white / white.shape[0], np.eye(5), atol=1e-8)
    full = PCA().fit(Xtr)
    np.testing.assert_allclose(backend.to_numpy(full.inverse_transform(full.transform(Xte))), backend.to_numpy(Xte),
                               rtol=1e-10)


def test_errors():
    X = np.ones((4, 3))
    with pytest.raises(RuntimeError, match="not fitted"):
        MeanSubtraction().transform(X)
    ms = MeanSubtraction().fit(X)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        ms.transform(np.ones((2, 2)))
    strict = backend.get_backend("array_api_strict", device="device1")
    with pytest.raises(backend.BackendMismatchError, match="backend.to_backend"):
        ms.transform(strict.asarray(X))
    with pytest.raises(ValueError, match="exceeds"):
        PCA(n_components=4).fit(X)


@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_standardization_of_extreme_float32_scales_is_exact(bk, scale):
    # Squaring features of scale 1e20 overflows float32 (and 1e-20 underflows it): the statistics
    # must still be those of the data, not inf (every feature becoming 0) or 0 (NaN or huge).
    rng = backend.Generator(5, xp=bk)
    X = rng.normal((64, 3), dtype="float32") * scale + 2.0 * scale
    h = backend.to_numpy(X).astype(np.float64)
    st = Standardization(eps=0.0).fit(X)
    assert_placement(st.scale_, backend=bk, shape=(3,), dtype=bk.xp.float32)
    np.testing.assert_allclose(backend.to_numpy(st.mean_), h.mean(0), rtol=1e-5)
    np.testing.assert_allclose(backend.to_numpy(st.scale_), h.std(0), rtol=1e-5)
    z = backend.to_numpy(st.transform(X))
    np.testing.assert_allclose(z, (h - h.mean(0)) / h.std(0), rtol=1e-4, atol=1e-5)


def test_standardization_of_a_constant_feature(bk):
    X = bk.asarray(np.array([[1.0, 5.0], [2.0, 5.0], [4.0, 5.0]]))
    z = backend.to_numpy(Standardization().fit_transform(X))
    assert np.isfinite(z).all() and not z[:, 1].any()
    with pytest.raises(ValueError, match=r"eps=0.*feature 1 is constant"):
        Standardization(eps=0).fit(X)
