"""xpml's classifiers as scikit-learn estimators, for ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``.

    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xpml.sklearn import SoftmaxClassifier

    search = GridSearchCV(make_pipeline(StandardScaler(), SoftmaxClassifier(random_state=0)),
                          {"softmaxclassifier__reg": [1e-4, 1e-3, 1e-2]}, cv=5).fit(X, y)

- :class:`KNNClassifier`: k-nearest neighbours (:class:`xpml.classifiers.KNearestNeighbor`).
- :class:`LinearSVMClassifier`, :class:`SoftmaxClassifier`: the course's linear classifiers
  (:class:`xpml.classifiers.LinearSVM`, :class:`xpml.classifiers.Softmax`), trained by minibatch
  SGD (or any update rule of :mod:`xpml.nets.optim`) on :class:`xpml.nets.Solver`.
- :class:`FullyConnectedClassifier`: :class:`xpml.nets.FullyConnectedNet` trained by the Solver.
- :class:`ConvNetClassifier`: :class:`xpml.nets.ConvNet` (the notes' VGG notation) trained by the
  Solver, on images (N, C, H, W) or their flattened rows with ``input_dim``.

Each fitted estimator keeps its trained xpml model in ``model_`` (save it with
:func:`xpml.nets.save_model`) and pickles, deep-copies and clones as scikit-learn expects.

Notes
-----
**Labels.** Any labels scikit-learn accepts for classification (strings, non-contiguous integers,
floats with integral values, booleans) are encoded as class indices ``0..C-1`` in the sorted
order of ``classes_``, the models train on the indices, and predictions are mapped back. At
least two classes are needed.

**Array API dispatch.** With ``sklearn.set_config(array_api_dispatch=True)`` (which scikit-learn
lets you turn on once ``SCIPY_ARRAY_API=1`` is set before SciPy is imported), CuPy, PyTorch and
array-api-strict inputs stay where they are: the model trains on ``X``'s namespace and device,
``y`` follows ``X`` (scikit-learn's convention), and predictions, probabilities and fitted arrays
live there too. String labels cannot live on a device: their ``classes_`` stay a NumPy array and
``predict`` returns NumPy labels, as scikit-learn's own estimators do. ``predict`` refuses inputs
of another namespace or device than ``fit``'s, with the call that moves them. Without dispatch,
inputs are converted to NumPy first, as everywhere in scikit-learn.

**No probabilities from the SVM.** :class:`LinearSVMClassifier` has ``decision_function`` (the
class scores, or their difference for two classes) and no ``predict_proba``: hinge-loss scores
are margins, not probabilities, and any squashing of them (a softmax of the margins, say) would
give numbers whose scale depends on ``reg`` and that nothing calibrates. For probabilities wrap
it in ``sklearn.calibration.CalibratedClassifierCV``, or use :class:`SoftmaxClassifier`, whose
probabilities are the model's own.
"""

from __future__ import annotations

import numbers
import warnings

import array_api_extra as xpx
import numpy as np

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # the core never needs scikit-learn; this module does
    raise ImportError(f"xpml.sklearn needs scikit-learn 1.6 or later ({exc}); install it with "
                      "pip install 'xpml[sklearn]'") from exc

from . import backend
from .backend.validation import check_positive
from .classifiers import KNearestNeighbor, LinearSVM, Softmax
from .classifiers.data_utils import append_bias
from .nets import ConvNet, FullyConnectedNet, Solver
from .nets._state import VersionedState

__all__ = ["ConvNetClassifier", "FullyConnectedClassifier", "KNNClassifier", "LinearSVMClassifier", "SoftmaxClassifier"]


# ---- inputs ----------------------------------------------------------------------------------------


def _dispatching() -> bool:
    return bool(sklearn.get_config().get("array_api_dispatch", False))


def _float_dtypes(X) -> list:
    """The dtypes ``X`` may keep: float64 and float32 of its namespace (only those its device has)
    under array API dispatch, else NumPy's; any other input is converted to the first."""
    if _dispatching():
        try:
            xp, device = backend.namespace_and_device(X)
        except TypeError:  # a list, a DataFrame, a sparse matrix: scikit-learn converts it to NumPy
            return [np.float64, np.float32]
        floats = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
        return [floats[name] for name in ("float64", "float32") if name in floats]
    return [np.float64, np.float32]


def _validated(estimator, X, y=None, *, reset: bool):
    """scikit-learn's checks of ``X`` (and ``y``): 2-d, numeric, finite, not sparse, not empty;
    ``n_features_in_`` (and ``feature_names_in_``) recorded at fit and compared after."""
    kwargs = {"y": y} if reset else {}
    try:
        return validate_data(estimator, X, reset=reset, dtype=_float_dtypes(X), allow_nd=estimator._allow_nd,
                             **kwargs)
    except ValueError as exc:
        if "could not convert string to float" in str(exc):
            raise ValueError(f"{exc}: {type(estimator).__name__} needs numeric features. Encode text or "
                             "categories first, e.g. with sklearn.preprocessing.OneHotEncoder or OrdinalEncoder "
                             "in a Pipeline") from exc
        raise


def _encode(y, bk: backend.Backend):
    """``(classes, indices)``: the sorted distinct labels and each label's index, on ``bk``.

    Numeric labels follow ``X`` to its backend; strings and other objects stay NumPy (no device
    holds them) and only their indices move.
    """
    if isinstance(y, np.ndarray) and y.dtype.kind not in "biuf":
        classes, idx = np.unique(y, return_inverse=True)
        return classes, bk.asarray(np.reshape(idx, (-1,)))
    y = backend.to_backend(y, bk)
    return bk.xp.unique_inverse(y)


def _seed(random_state):
    """An xpml seed from a scikit-learn ``random_state``: None (fresh entropy), an int, or a draw
    from a ``numpy.random.RandomState``."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    raise ValueError(f"random_state must be None, an int or a numpy.random.RandomState, got {random_state!r}")


def _dtype_name(dtype, X) -> str:
    """``"float32"`` or ``"float64"``: ``dtype``, or the data's when None."""
    if dtype is None:
        return "float64" if X.dtype == backend.get_namespace(X).float64 else "float32"
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be None (follow the data), 'float32' or 'float64', got {dtype!r}")
    return dtype


# Bytes of activations a chunk of rows may hold when the scores are computed here.
_LOG_PROBA_BUDGET = 64 * 2**20


def _softmax(scores, /, *, log: bool = False):
    """Row-wise softmax (or its logarithm) of scores (N, C), shifted by the row maximum."""
    xp = backend.get_namespace(scores)
    shifted = scores - xp.max(scores, axis=1, keepdims=True)
    if log:
        return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    e = xp.exp(shifted)
    return e / xp.sum(e, axis=1, keepdims=True)


# ---- the shared estimator ---------------------------------------------------------------------------


class _Classifier(ClassifierMixin, VersionedState, BaseEstimator):
    """fit/predict plumbing: validation, label encoding, placement; subclasses train and score."""

    _allow_nd = False  # whether X may be more than 2-d (images)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    def fit(self, X, y):
        """Fit on ``X`` (N, D) and labels ``y`` (N,); return ``self``."""
        X, y = _validated(self, X, y, reset=True)
        check_classification_targets(y)
        bk = backend.backend_of(X)
        classes, idx = _encode(y, bk)
        if classes.shape[0] < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes, but y holds only one "
                             f"class ({_first(classes)!r})")
        self.classes_ = classes
        self._fit(X, idx)
        return self

    def predict(self, X):
        """Predicted labels (N,), of ``classes_``."""
        X = self._queries(X, "predict")
        idx = self._predict_indices(X)
        classes = self.classes_
        if isinstance(classes, np.ndarray):  # string labels live on the host, their indices come home
            idx = np.asarray(backend.to_numpy(idx))
        return backend.get_namespace(classes).take(classes, idx, axis=0)

    def _queries(self, X, method: str):
        """``X`` checked against the fit: fitted, the same namespace and device, the same features."""
        check_is_fitted(self)
        if _dispatching():
            fitted = self._fitted_backend()
            try:
                here = backend.backend_of(X)
            except TypeError:  # not an array of any namespace: scikit-learn makes it a NumPy array
                here = None
            if (here is None and fitted != backend.get_backend("numpy")) or (here is not None and here != fitted):
                got = "an array-like (NumPy once converted)" if here is None else repr(here.label)
                raise ValueError(
                    f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and the same "
                    f"device as those passed to fit(): fit used {fitted.label!r}, {method} got {got}; move X first, "
                    f"e.g. xpml.backend.to_backend(X, {fitted.label!r})")
        return _validated(self, X, reset=False)

    def _fitted_backend(self) -> backend.Backend:
        return self.model_.backend

    def _fit(self, X, y):
        raise NotImplementedError

    def _predict_indices(self, X):
        raise NotImplementedError

    def _trained(self, history, diverged_at) -> None:
        """Record a training run's losses; warn when it diverged."""
        self.loss_history_ = list(history)
        self.diverged_at_ = diverged_at
        if diverged_at is not None:
            warnings.warn(f"{type(self).__name__}: training diverged at iteration {diverged_at} (the loss stopped "
                          "being finite); its predictions are meaningless. Lower learning_rate", ConvergenceWarning,
                          stacklevel=3)


def _first(classes):
    value = classes[0]
    return value.item() if hasattr(value, "item") else value


# ---- k nearest neighbours ------------------------------------------------------------------------


class KNNClassifier(_Classifier):
    """k-nearest-neighbour classification with exact L2 or L1 distances.

    Parameters
    ----------
    n_neighbors : int
        k, the neighbours that vote.
    metric : {"l2", "l1"}, keyword-only
    precision : {"auto", "exact", "bfloat16"}, keyword-only
        The format of the products that find L2 candidates; it changes the speed, never the result
        (see :class:`xpml.classifiers.KNearestNeighbor`).
    memory_budget : int, keyword-only
        Bytes of temporaries a search may use.

    Attributes
    ----------
    classes_ : array (C,)
    n_features_in_ : int
    model_ : xpml.classifiers.KNearestNeighbor
        The trained model (it holds the training data, on its device).

    Notes
    -----
    ``predict`` is the majority label of the k nearest training rows (a tie in the vote goes to
    the class that comes first in ``classes_``, a tie in distance to the earlier training row);
    ``predict_proba`` the fraction of the k votes each class got, as scikit-learn's
    ``KNeighborsClassifier`` with uniform weights.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)  # 150 flowers, 4 features, 3 classes
    >>> from sklearn.model_selection import cross_val_score
    >>> from xpml.sklearn import KNNClassifier
    >>> knn = KNNClassifier(n_neighbors=3).fit(X, y)
    >>> knn.classes_, knn.predict_proba(X[:1])
    (array([0, 1, 2]), array([[1., 0., 0.]]))
    >>> cross_val_score(KNNClassifier(n_neighbors=3), X, y, cv=3).round(2)
    array([0.98, 0.96, 0.98])
    """

    def __init__(self, n_neighbors=5, *, metric="l2", precision="auto", memory_budget=256 * 2**20):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.precision = precision
        self.memory_budget = memory_budget

    def _fit(self, X, y):
        k = check_positive(self.n_neighbors, name="n_neighbors", integer=True)
        if k > X.shape[0]:
            raise ValueError(f"n_neighbors={k} is more than the {X.shape[0]} training examples; choose at most "
                             f"{X.shape[0]}")
        self.model_ = KNearestNeighbor(self.metric, memory_budget=self.memory_budget,
                                       precision=self.precision).train(X, y)

    def _fitted_backend(self):
        return backend.backend_of(self.model_.X_train)

    def _predict_indices(self, X):
        return self.model_.predict(X, k=self.n_neighbors)

    def predict_proba(self, X):
        """The fraction of the k nearest neighbours in each class: (N, C), columns as ``classes_``."""
        X = self._queries(X, "predict_proba")
        model, k = self.model_, self.n_neighbors
        idx = model.kneighbors(X, k, return_distance=False)
        xp = backend.get_namespace(idx)
        votes = xp.reshape(xp.take(model.y_train, xp.reshape(idx, (-1,)), axis=0), idx.shape)
        counts = xp.sum(xpx.one_hot(votes, model.num_classes, dtype=model.X_train.dtype, xp=xp), axis=1)
        return counts / k


# ---- linear classifiers --------------------------------------------------------------------------


class _Linear(_Classifier):
    """Scores ``X W + b`` trained on a loss by minibatch gradient descent (see the subclasses)."""

    _model = None  # the xpml class

    def __init__(self, *, learning_rate=1e-2, reg=1e-4, num_iters=1000, batch_size=200, update_rule="sgd",
                 fit_intercept=True, dtype=None, random_state=None, verbose=False):
        self.learning_rate = learning_rate
        self.reg = reg
        self.num_iters = num_iters
        self.batch_size = batch_size
        self.update_rule = update_rule
        self.fit_intercept = fit_intercept
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _design(self, X):
        # The bias trick of the course: a column of ones, whose weights (the last row of W) are the
        # intercepts, regularized with the rest.
        return append_bias(X) if self.fit_intercept else X

    def _fit(self, X, y):
        model = self._model(seed=_seed(self.random_state), dtype=_dtype_name(self.dtype, X))
        history = model.train(self._design(X), y, self.learning_rate, self.reg, self.num_iters, self.batch_size,
                              bool(self.verbose), update_rule=self.update_rule)
        self.model_ = model
        self._trained(history, model.diverged_at)

    def _predict_indices(self, X):
        return self.model_.predict(self._design(X))

    def _scores(self, X):
        W = self.model_.W
        X = self._design(X)
        return backend.get_namespace(W).astype(X, W.dtype, copy=False) @ W

    @property
    def coef_(self):
        """The weights (C, D), one row per class (as in scikit-learn, also for two classes)."""
        W = self.model_.W
        return (W[:-1, :] if self.fit_intercept else W).T

    @property
    def intercept_(self):
        """The intercepts (C,): zeros without ``fit_intercept``."""
        W = self.model_.W
        if self.fit_intercept:
            return W[-1, :]
        xp = backend.get_namespace(W)
        return xp.zeros((W.shape[1],), dtype=W.dtype, device=backend.get_device(W))

    def decision_function(self, X):
        """Class scores (N, C) = ``X coef_.T + intercept_``; for two classes the score of
        ``classes_[1]`` less that of ``classes_[0]``, (N,), positive where ``classes_[1]`` wins."""
        scores = self._scores(self._queries(X, "decision_function"))
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores


class LinearSVMClassifier(_Linear):
    """The multiclass linear SVM of CS231n (hinge loss ``sum_j max(0, s_j - s_y + 1)``, L2 penalty
    ``reg * sum(W**2)``) trained by minibatch SGD.

    Parameters
    ----------
    learning_rate : float, keyword-only
        Step size.
    reg : float, keyword-only
        L2 regularization strength.
    num_iters : int, keyword-only
        SGD steps.
    batch_size : int, keyword-only
        Examples per step, drawn with replacement.
    update_rule : str or callable, keyword-only
        ``"sgd"`` or another name of the rule table :data:`xpml.nets.rules.RULES` (``"momentum"``,
        ``"adam"``, ...), or a course rule ``rule(w, dw, config)``.
    fit_intercept : bool, keyword-only
        Learn one intercept per class (the course's bias trick: a column of ones appended to X;
        the intercepts are regularized with the weights).
    dtype : None, "float32" or "float64", keyword-only
        The dtype of training; None follows the data.
    random_state : None, int or numpy.random.RandomState, keyword-only
        Seeds the initial weights and the minibatches; the same seed gives the same model on every
        backend.
    verbose : bool, keyword-only
        Print the loss every 100 iterations.

    Attributes
    ----------
    classes_ : array (C,)
    n_features_in_ : int
    coef_ : array (C, D)
    intercept_ : array (C,)
    model_ : xpml.classifiers.LinearSVM
    loss_history_ : list of float
    diverged_at_ : int or None
        The iteration whose loss first was not finite (a ``ConvergenceWarning`` says so).

    Notes
    -----
    No ``predict_proba``: hinge-loss scores are not probabilities (see the module notes). Use
    ``decision_function``, or ``CalibratedClassifierCV(LinearSVMClassifier())``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)  # 150 flowers, 4 features, 3 classes
    >>> from xpml.sklearn import LinearSVMClassifier
    >>> svm = LinearSVMClassifier(learning_rate=0.01, num_iters=300, random_state=0).fit(X, y)
    >>> svm.decision_function(X[:2]).shape, svm.score(X, y) > 0.85
    ((2, 3), True)
    >>> hasattr(svm, "predict_proba")  # margins are not probabilities
    False
    """

    _model = LinearSVM


class SoftmaxClassifier(_Linear):
    """Multinomial logistic regression as CS231n's softmax classifier (cross-entropy of
    ``softmax(X W + b)``, L2 penalty ``reg * sum(W**2)``), trained by minibatch SGD.

    Parameters and attributes are those of :class:`LinearSVMClassifier` (``model_`` is an
    :class:`xpml.classifiers.Softmax`).

    Notes
    -----
    ``predict_proba`` is the softmax of the class scores, the probabilities the model was trained
    to give.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)  # 150 flowers, 4 features, 3 classes
    >>> import numpy as np
    >>> from xpml.sklearn import SoftmaxClassifier
    >>> names = np.array(["setosa", "versicolor", "virginica"])[y]  # any labels: here strings
    >>> clf = SoftmaxClassifier(learning_rate=0.1, num_iters=300, random_state=0).fit(X, names)
    >>> clf.classes_, clf.predict(X[:2])
    (array(['setosa', 'versicolor', 'virginica'], dtype='<U10'), array(['setosa', 'setosa'], dtype='<U10'))
    >>> round(float(clf.predict_proba(X[:1]).sum()), 6), clf.score(X, names) > 0.9
    (1.0, True)
    """

    _model = Softmax

    def predict_proba(self, X):
        """Class probabilities (N, C), the softmax of the scores; columns as ``classes_``."""
        return _softmax(self._scores(self._queries(X, "predict_proba")))

    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`, computed without underflow."""
        return _softmax(self._scores(self._queries(X, "predict_log_proba")), log=True)


# ---- fully connected nets ------------------------------------------------------------------------


class _Net(_Classifier):
    """What the two net estimators share: training by the Solver, predictions, probabilities."""

    def _train(self, net, X, y) -> None:
        solver = Solver(net, {"X_train": X, "y_train": y}, update_rule=self.update_rule,
                        optim_config={"learning_rate": self.learning_rate}, lr_decay=self.lr_decay,
                        batch_size=self.batch_size, num_iters=self.num_iters, train_accuracy=None, check_ends=False,
                        restore_best=False, verbose=bool(self.verbose))
        solver.train()
        self.model_ = net
        self._trained(solver.loss_history, solver.diverged_at)

    def _predict_indices(self, X):
        return self.model_.predict(X)

    def predict_proba(self, X):
        """Class probabilities (N, C), the softmax of the net's scores; columns as ``classes_``."""
        X = self._queries(X, "predict_proba")
        return self.model_.predict_proba(X)

    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`, the log-softmax of the scores: finite where the
        probabilities underflow to 0 (a confident net)."""
        X = self._queries(X, "predict_log_proba")
        model = self.model_
        xp = backend.get_namespace(X)
        # The scores of row chunks, as predict_proba bounds its memory; log(softmax) would be -inf.
        widest = max(int(v.shape[-1]) for v in model.params.values())
        rows = max(1, _LOG_PROBA_BUDGET // (2 * widest * (8 if model.dtype_name == "float64" else 4)))
        n = X.shape[0]
        out = [_softmax(model.loss(X[i:min(i + rows, n), ...]), log=True) for i in range(0, max(n, 1), rows)]
        return out[0] if len(out) == 1 else xp.concat(out, axis=0)


class FullyConnectedClassifier(_Net):
    """A fully connected net (:class:`xpml.nets.FullyConnectedNet`) trained by :class:`xpml.nets.Solver`.

    Parameters
    ----------
    hidden_dims : tuple of int
        The width of each hidden layer; ``()`` is a linear softmax classifier.
    activation : str, keyword-only
        ``"relu"``, ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"`` or ``"maxout"``.
    normalization : None, "batchnorm" or "layernorm", keyword-only
    dropout_keep_ratio : float, keyword-only
        Probability of keeping a hidden unit in training; 1 is no dropout.
    reg : float, keyword-only
        L2 strength: the loss adds ``0.5 * reg * sum(W**2)`` over the weight matrices.
    weight_scale : float, keyword-only
        Standard deviation of the initial weights for ``init="std"``.
    init : {"he", "xavier", "std"}, keyword-only
    update_rule : str, keyword-only
        A name of the rule table :data:`xpml.nets.rules.RULES` (``"adam"``, ``"momentum"``, ...).
    learning_rate : float, keyword-only
    lr_decay : float, keyword-only
        Learning-rate factor after each epoch (an epoch is ``N // batch_size`` steps, at least 1).
    num_iters : int, keyword-only
        Training steps.
    batch_size : int, keyword-only
        Examples per step, drawn with replacement.
    dtype : None, "float32" or "float64", keyword-only
        The dtype of the net; None follows the data.
    random_state : None, int or numpy.random.RandomState, keyword-only
        Seeds the initial weights, the minibatches and the dropout masks.
    verbose : bool, keyword-only
        Print the Solver's progress.

    Attributes
    ----------
    classes_ : array (C,)
    n_features_in_ : int
    model_ : xpml.nets.FullyConnectedNet
    loss_history_ : list of float
    diverged_at_ : int or None

    Notes
    -----
    ``predict_proba`` is the softmax of the net's scores (in test mode: no dropout, batch norm with
    its running statistics).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)  # 150 flowers, 4 features, 3 classes
    >>> from xpml.sklearn import FullyConnectedClassifier
    >>> clf = FullyConnectedClassifier((20,), num_iters=200, learning_rate=1e-2, random_state=0).fit(X, y)
    >>> clf.model_
    FullyConnectedNet([20], input_dim=4, num_classes=3, dtype='float64', backend='numpy')
    >>> clf.predict_proba(X[:2]).shape, clf.score(X, y) > 0.9
    ((2, 3), True)
    """

    def __init__(self, hidden_dims=(100,), *, activation="relu", normalization=None, dropout_keep_ratio=1.0,
                 reg=1e-4, weight_scale=1e-2, init="he", update_rule="adam", learning_rate=1e-3, lr_decay=1.0,
                 num_iters=1000, batch_size=200, dtype=None, random_state=None, verbose=False):
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.normalization = normalization
        self.dropout_keep_ratio = dropout_keep_ratio
        self.reg = reg
        self.weight_scale = weight_scale
        self.init = init
        self.update_rule = update_rule
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.num_iters = num_iters
        self.batch_size = batch_size
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y):
        bk = backend.backend_of(X)
        hidden = [self.hidden_dims] if isinstance(self.hidden_dims, numbers.Integral) else self.hidden_dims
        net = FullyConnectedNet(hidden, input_dim=X.shape[1], num_classes=int(self.classes_.shape[0]),
                                dropout_keep_ratio=self.dropout_keep_ratio, normalization=self.normalization,
                                reg=self.reg, weight_scale=self.weight_scale, dtype=_dtype_name(self.dtype, X),
                                seed=_seed(self.random_state), activation=self.activation, init=self.init, xp=bk)
        self._train(net, X, y)


class ConvNetClassifier(_Net):
    """A convolutional net (:class:`xpml.nets.ConvNet`) trained by :class:`xpml.nets.Solver`.

    Parameters
    ----------
    architecture : str
        The layers in the notes' VGG notation (see :mod:`xpml.nets.convnet`), e.g.
        ``"CONV3-32 BN CONV3-32 BN POOL2 FC-10"``. When it does not end with an FC layer, an FC
        layer of one output per class is appended (so ``"CONV3-16 POOL2"`` fits any labels); when
        it does, that layer's outputs must be the number of classes.
    input_dim : None or (C, H, W), keyword-only
        The image shape of flattened rows: ``X`` (N, C*H*W) in (channel, height, width) order.
        With images ``X`` (N, C, H, W) it may be left None (or must match). Rows without it are
        read as D channels of a 1 x 1 image, so that plain tabular data works as well.
    reg, weight_scale, init, update_rule, learning_rate, lr_decay, num_iters, batch_size, dtype, \
random_state, verbose : keyword-only
        As for :class:`FullyConnectedClassifier`.

    Attributes
    ----------
    classes_ : array (C,)
    n_features_in_ : int
        D for rows; C (the channels) for images, as scikit-learn counts the second axis.
    model_ : xpml.nets.ConvNet
    loss_history_ : list of float
    diverged_at_ : int or None

    Notes
    -----
    ``predict_proba`` is the softmax of the net's scores in test mode (batch norm with its running
    statistics, no dropout). Predictions take the same layout as ``fit``: images, or rows.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from xpml.sklearn import ConvNetClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = ConvNetClassifier("CONV3-8 POOL2", input_dim=(1, 8, 8), num_iters=200, random_state=0)
    >>> clf.fit(X[:500] / 16.0, y[:500]).predict(X[:3] / 16.0)
    array([0, 1, 2])
    """

    _allow_nd = True

    def __init__(self, architecture="CONV3-16", *, input_dim=None, reg=1e-4, weight_scale=1e-2, init="he",
                 update_rule="adam", learning_rate=1e-3, lr_decay=1.0, num_iters=1000, batch_size=200, dtype=None,
                 random_state=None, verbose=False):
        self.architecture = architecture
        self.input_dim = input_dim
        self.reg = reg
        self.weight_scale = weight_scale
        self.init = init
        self.update_rule = update_rule
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.num_iters = num_iters
        self.batch_size = batch_size
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _image_shape(self, X) -> tuple:
        given = None if self.input_dim is None else tuple(int(v) for v in self.input_dim)
        if X.ndim == 4:
            if given is not None and given != tuple(X.shape[1:]):
                raise ValueError(f"input_dim={given} but X holds images of shape {tuple(X.shape[1:])}; "
                                 "leave input_dim None for images (N, C, H, W)")
            return tuple(X.shape[1:])
        if X.ndim != 2:
            raise ValueError(f"X must be images (N, C, H, W) or rows (N, C*H*W) with input_dim, got shape "
                             f"{tuple(X.shape)}")
        if given is None:
            return (int(X.shape[1]), 1, 1)
        if len(given) != 3 or given[0] * given[1] * given[2] != X.shape[1]:
            raise ValueError(f"input_dim={given} (C, H, W) must hold the {X.shape[1]} features of a row of X")
        return given

    def _fit(self, X, y):
        from .nets.convnet import parse_architecture

        bk = backend.backend_of(X)
        C = int(self.classes_.shape[0])
        text = self.architecture
        try:
            layers = parse_architecture(text)
        except ValueError as exc:
            if "must end with an FC layer" not in str(exc):
                raise
            text, layers = f"{text} FC-{C}", parse_architecture(f"{text} FC-{C}")
        if layers[-1].outputs != C:
            raise ValueError(f"architecture ends with {layers[-1].token}, {layers[-1].outputs} class scores, but y "
                             f"holds {C} classes: end it with FC-{C}, or leave the last FC out to have it added")
        shape = self._image_shape(X)
        net = ConvNet(text, shape, reg=self.reg, weight_scale=self.weight_scale, init=self.init,
                      dtype=_dtype_name(self.dtype, X), seed=_seed(self.random_state), xp=bk)
        # The Solver hands its minibatches to the net as they are: images, not rows.
        self._train(net, bk.xp.reshape(X, (X.shape[0], *shape)), y)
