"""Data preprocessing of the course notes: fit on the training data, apply to every split.

- :class:`MeanSubtraction`: subtract the per-feature mean (the course's "mean image").
- :class:`Standardization`: subtract the mean and divide by the per-feature standard deviation.
- :class:`PCA`: centre, rotate onto the top principal components, and optionally whiten.

Each is a small fit/transform object. ``fit`` computes its statistics on the training data's
namespace and device and keeps them there; ``transform`` accepts data on that backend only (an
error says how to move other data), so validation and test data are transformed with the
training statistics, never their own.
"""

from __future__ import annotations

from .. import backend
from ..backend._arith import itruediv
from ..backend.errors import InputError
from ..backend.validation import check_data, check_positive
from ._state import VersionedState

__all__ = ["PCA", "MeanSubtraction", "Standardization"]


class _Preprocessor(VersionedState):
    """fit/transform plumbing shared by the three transforms."""

    def fit_transform(self, X, /):
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def _check_fitted(self, X, name: str = "X"):
        state = self.mean_
        if state is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(X_train) first")
        fitted_on = backend.backend_of(state)
        backend.check_on_backend(X, fitted_on, name=name, owner=f"{type(self).__name__} (fitted there)",
                                 target="backend.backend_of(preprocessor.mean_)")
        xp = fitted_on.xp
        if X.ndim != 2 or X.shape[1] != state.shape[0]:
            raise InputError(f"{name} must have shape (N, {self.mean_.shape[0]}), got {tuple(X.shape)}")
        # NaN or inf in would come out as NaN features, and a model trained on them predicts nonsense.
        check_data(X, name=name)
        return xp

    @staticmethod
    def _mean(X):
        xp = backend.get_namespace(X)
        return xp.mean(X, axis=0)


def _mean_and_std(X):
    """Per-feature mean and population standard deviation of ``X`` (N, D), without overflow or underflow.

    Notes
    -----
    Each feature is first divided by its largest magnitude ``m`` (a power of two would be exact;
    any positive ``m`` keeps the quotients in [-1, 1]): ``mu = m mean(X / m)`` and
    ``sigma = m sqrt(mean((X / m - mean(X / m))^2))``. Squaring ``X`` itself overflows float32 for
    features of scale 1e20 (and flushes those of scale 1e-20 to zero); the quotients' squares lie in
    [0, 4]. A constant-zero feature keeps ``m = 1``.
    """
    xp, device = backend.namespace_and_device(X)
    m = xp.max(xp.abs(X), axis=0)
    m = xp.where(m > 0, m, xp.ones((), dtype=X.dtype, device=device))
    Xs = X / m
    mu = xp.mean(Xs, axis=0)
    centred = Xs - mu
    return mu * m, xp.sqrt(xp.mean(centred * centred, axis=0)) * m


class MeanSubtraction(_Preprocessor):
    """Subtract the training mean of each feature.

    Attributes
    ----------
    mean_ : array (D,)
        The per-feature mean of the training data, on its device.

    Notes
    -----
    ``X' = X - mean(X_train, axis=0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.preprocessing import MeanSubtraction
    >>> X = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    >>> centering = MeanSubtraction().fit(X)
    >>> centering.mean_
    array([3., 6.])
    >>> centering.transform(X)
    array([[-2., -4.],
           [ 0.,  0.],
           [ 2.,  4.]])
    >>> bool(np.allclose(centering.inverse_transform(centering.transform(X)), X))
    True
    """

    def __init__(self):
        self.mean_ = None

    def fit(self, X, /):
        """Compute the mean of ``X`` (N, D); return ``self``."""
        check_data(X, name="X")
        self.mean_ = self._mean(X)
        return self

    def transform(self, X, /):
        """``X - mean_`` (N, D), a new array."""
        self._check_fitted(X)
        return X - self.mean_

    def inverse_transform(self, X, /):
        """Undo :meth:`transform`."""
        self._check_fitted(X)
        return X + self.mean_


class Standardization(_Preprocessor):
    """Zero mean, unit variance per feature, with the training statistics.

    Parameters
    ----------
    eps : float, keyword-only
        Added to the standard deviation so constant features do not divide by zero (they map to
        0). With ``eps=0``, fitting data with a constant feature is an error.

    Notes
    -----
    ``X' = (X - mu) / (sigma + eps)`` with ``mu``, ``sigma`` the training mean and (population)
    standard deviation of each feature, computed on features scaled to [-1, 1] so that neither
    overflows nor underflows (see ``_mean_and_std``).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.preprocessing import Standardization
    >>> X = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    >>> Standardization().fit(X).transform(X).round(4)
    array([[-1.2247, -1.2247],
           [ 0.    ,  0.    ],
           [ 1.2247,  1.2247]])
    """

    def __init__(self, *, eps: float = 1e-8):
        # A Python float: a NumPy float64 eps would turn float32 statistics into float64 ones.
        self.eps = float(check_positive(eps, name="eps", allow_zero=True))
        self.mean_ = self.scale_ = None

    def fit(self, X, /):
        """Compute the mean and standard deviation of ``X`` (N, D); return ``self``.

        Raises
        ------
        ValueError
            With ``eps=0``, when a feature is constant in ``X``: its scale would be 0.
        """
        check_data(X, name="X")
        self.mean_, std = _mean_and_std(X)
        if self.eps == 0:
            constant = backend.to_numpy(std == 0).nonzero()[0]  # one transfer, at fit time
            if constant.size:
                which = ", ".join(str(int(i)) for i in constant[:5]) + (", ..." if constant.size > 5 else "")
                raise InputError(
                    f"Standardization(eps=0) would divide by zero: feature{'s' if constant.size > 1 else ''} "
                    f"{which} {'are' if constant.size > 1 else 'is'} constant in the training data (standard "
                    "deviation 0); use eps > 0 (the default 1e-8 maps a constant feature to 0) or drop "
                    f"{'them' if constant.size > 1 else 'it'}")
        self.scale_ = std + self.eps
        return self

    def transform(self, X, /):
        """``(X - mean_) / scale_`` (N, D)."""
        self._check_fitted(X)
        return itruediv(X - self.mean_, self.scale_)

    def inverse_transform(self, X, /):
        """Undo :meth:`transform`."""
        self._check_fitted(X)
        return X * self.scale_ + self.mean_


class PCA(_Preprocessor):
    """Principal component analysis, with optional whitening, as in the course notes.

    Parameters
    ----------
    n_components : int or None, keyword-only
        K, the number of leading components kept; None keeps all D.
    whiten : bool, keyword-only
        Divide each component by the square root of its eigenvalue, giving unit variance.
    eps : float, keyword-only
        Added to the eigenvalues before whitening (the notes' 1e-5), which keeps tiny components
        from exploding into noise.

    Attributes
    ----------
    mean_ : array (D,)
    components_ : array (D, K)
        Eigenvectors of the training covariance, by decreasing eigenvalue.
    explained_variance_ : array (K,)
        The matching eigenvalues.

    Notes
    -----
    ``cov = Xc^T Xc / N`` with ``Xc = X - mean``; ``cov = U diag(S) U^T``; ``X_rot = Xc U[:, :K]``;
    whitened: ``X_rot / sqrt(S[:K] + eps)``. The eigendecomposition runs in the training data's
    dtype; computing it in float64 for float32 data is a choice left to the caller (fit on a
    float64 copy).

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets.preprocessing import PCA
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 3)) * np.array([3.0, 1.0, 0.1])  # three axes of decreasing spread
    >>> pca = PCA(n_components=2).fit(X)
    >>> pca.transform(X).shape, pca.components_.shape
    ((50, 2), (3, 2))
    >>> white = PCA(whiten=True).fit(X)
    >>> np.cov(white.transform(X), rowvar=False).round(1) + 0.0  # whitened: unit variance, uncorrelated
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """

    def __init__(self, *, n_components: int | None = None, whiten: bool = False, eps: float = 1e-5):
        if n_components is not None:
            check_positive(n_components, name="n_components", integer=True)
        self.n_components = n_components
        self.whiten = bool(whiten)
        self.eps = float(check_positive(eps, name="eps", allow_zero=True))
        self.mean_ = self.components_ = self.explained_variance_ = None

    def fit(self, X, /):
        """Compute the mean and principal axes of ``X`` (N, D); return ``self``."""
        check_data(X, name="X")
        xp = backend.get_namespace(X)
        N, D = X.shape
        k = D if self.n_components is None else self.n_components
        if k > D:
            raise InputError(f"n_components={k} exceeds the number of features D={D}")
        self.mean_ = self._mean(X)
        Xc = X - self.mean_
        cov = (Xc.T @ Xc) / N
        # eigh returns ascending eigenvalues; the notes' U from svd(cov) is ordered by decreasing.
        S, U = xp.linalg.eigh(cov)
        S = xp.flip(S)[:k]
        U = xp.flip(U, axis=1)[:, :k]
        self.explained_variance_ = xp.maximum(S, 0.0)
        self.components_ = U
        return self

    def transform(self, X, /):
        """Project ``X`` (N, D) on the components: (N, K), whitened if asked."""
        self._check_fitted(X)
        xp = backend.get_namespace(X)
        out = (X - self.mean_) @ self.components_
        if self.whiten:
            out = itruediv(out, xp.sqrt(self.explained_variance_ + self.eps))
        return out

    def inverse_transform(self, Z, /):
        """Map (N, K) back to (N, D); exact when K = D.

        Examples
        --------
        >>> import numpy as np
        >>> from xpml.nets.preprocessing import PCA
        >>> X = np.random.default_rng(0).normal(size=(10, 3))
        >>> pca = PCA().fit(X)  # all components kept: the round trip is exact up to rounding
        >>> bool(np.allclose(pca.inverse_transform(pca.transform(X)), X))
        True
        """
        xp = backend.get_namespace(Z)
        if self.whiten:
            Z = Z * xp.sqrt(self.explained_variance_ + self.eps)
        return Z @ self.components_.T + self.mean_
