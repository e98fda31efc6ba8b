"""The hierarchical softmax from features: O(sqrt(C)) work per example, never an (N, C) array.

:func:`nets.losses.hierarchical_softmax_loss` takes dense scores (N, G + C), so whoever computed
them has already paid O(C D) per example. :func:`hierarchical_softmax_loss_from_features` takes
the features and the weights instead and computes only what the loss reads: the G group scores
of every example and the S class scores of its own group, with gradients of the same cost.
"""

from __future__ import annotations

from .. import backend
from ..backend._arith import imul, isub, itruediv
from ..backend.errors import InputError

__all__ = ["hierarchical_softmax_loss_from_features"]


def _tables(tree, xp, device, index_dtype):
    """The tree as device index arrays (made once per namespace and device): each group's
    members, each class's position in its group, the group of each class, and the permutation
    that takes the groups' members laid end to end back to class order."""
    key = ("features", xp, str(device), index_dtype)
    tables = tree._tables.get(key)
    if tables is None:
        position = [0] * tree.num_classes
        for group in tree.groups:
            for k, c in enumerate(group):
                position[c] = k
        flat = [c for group in tree.groups for c in group]
        back = [0] * tree.num_classes
        for k, c in enumerate(flat):
            back[c] = k
        tables = tree._tables[key] = (
            tuple(xp.asarray(list(group), dtype=index_dtype, device=device) for group in tree.groups),
            xp.asarray(position, dtype=index_dtype, device=device),
            xp.asarray(list(tree.group_of), dtype=index_dtype, device=device),
            xp.asarray(back, dtype=index_dtype, device=device),
        )
    return tables


def _check_shapes(X, W_groups, b_groups, W_classes, b_classes, y, tree) -> None:
    if X.ndim != 2:
        raise InputError(f"X must hold features of shape (N, D), got {tuple(X.shape)}")
    N, D = X.shape
    if N == 0:
        raise InputError("X holds no examples; the loss is an average over at least one")
    G, C = tree.num_groups, tree.num_classes
    expected = {"W_groups": (D, G), "b_groups": (G,), "W_classes": (D, C), "b_classes": (C,), "y": (N,)}
    got = {"W_groups": W_groups, "b_groups": b_groups, "W_classes": W_classes, "b_classes": b_classes, "y": y}
    for name, shape in expected.items():
        if tuple(got[name].shape) != shape:
            raise InputError(f"{name} must have shape {shape} for X of shape {(N, D)} and a tree of {G} groups "
                             f"of {C} classes, got {tuple(got[name].shape)}")


def hierarchical_softmax_loss_from_features(X, W_groups, b_groups, W_classes, b_classes, y, tree, /):
    """Hierarchical softmax loss of a linear layer over a two-level class tree, and its gradients.

    The same loss as ``hierarchical_softmax_loss(concat([X @ W_groups + b_groups, X @ W_classes
    + b_classes], axis=1), y, tree)``, computed without the (N, C) class scores.

    Parameters
    ----------
    X : array (N, D)
        Features (the last hidden layer, or the inputs of a linear classifier).
    W_groups : array (D, G)
        Weights of the group scores.
    b_groups : array (G,)
    W_classes : array (D, C)
        Weights of the class scores; column c scores class c within its group.
    b_classes : array (C,)
    y : array (N,) of int
        Labels in [0, C).
    tree : nets.losses.ClassTree
        G groups of the C classes.

    Returns
    -------
    loss : 0-d array on X's device
        The loss averaged over the N examples.
    grads : tuple of arrays
        ``(dX, dW_groups, db_groups, dW_classes, db_classes)``, shaped like the arguments.

    Notes
    -----
    With ``g_i`` the label's group and ``m(g)`` its members,
    ``-log P(y_i) = -log softmax(X_i W_groups + b_groups)_{g_i}
    - log softmax(X_i W_classes[:, m(g_i)] + b_classes[m(g_i)])_{y_i}``.

    Cost: the group scores take O(G D) per example. For the class level the examples are sorted
    by group and each group's examples, a contiguous slice, meet that group's S weight columns in
    one matmul: O(S D) per example forward and backward, and one matmul per group for
    ``dW_classes`` (whose columns of groups without examples are zero). With G and S about
    sqrt(C), the work is O(sqrt(C) D) per example, against O(C D) for the dense scores.

    The slices' bounds are the number of examples in each group: one host read of G counts per
    call (outside any compiled step), the price of plain matmuls on contiguous slices. No
    indexed assignment either: the groups' gradient columns are laid end to end and put back in
    class order by one ``take``.

    Examples
    --------
    Zero weights score the 4 classes alike (loss log 4); the gradients are shaped like the arguments:

    >>> import numpy as np
    >>> from xpml.nets.losses import ClassTree
    >>> from xpml.nets.hierarchical import hierarchical_softmax_loss_from_features
    >>> tree = ClassTree([[0, 1], [2, 3]])
    >>> X = np.random.default_rng(0).standard_normal((3, 5))
    >>> loss, grads = hierarchical_softmax_loss_from_features(
    ...     X, np.zeros((5, 2)), np.zeros(2), np.zeros((5, 4)), np.zeros(4), np.array([0, 3, 1]), tree)
    >>> round(float(loss), 4)
    1.3863
    >>> [g.shape for g in grads]
    [(3, 5), (5, 2), (2,), (5, 4), (4,)]
    """
    xp, device = backend.namespace_and_device(X, W_groups, b_groups, W_classes, b_classes, y)
    _check_shapes(X, W_groups, b_groups, W_classes, b_classes, y, tree)
    N, D = X.shape
    G = tree.num_groups
    members, position, group_of, back = _tables(tree, xp, device, backend.index_dtype(xp, device))
    labels = xp.astype(y, group_of.dtype)
    gy = xp.take(group_of, labels, axis=0)                                  # (N,) the label's group
    in_g = xp.reshape(gy, (-1, 1)) == xp.arange(G, dtype=gy.dtype, device=device)
    onehot_g = xp.astype(in_g, X.dtype)

    # Level one: the G group scores of every example.
    sg = X @ W_groups + b_groups
    shifted = sg - xp.max(sg, axis=1, keepdims=True)
    pg = xp.exp(shifted)
    sum_g = xp.sum(pg, axis=1, keepdims=True)
    pg = itruediv(pg, sum_g)
    loss = xp.sum(xp.log(sum_g)) - xp.reshape(shifted, (-1,)) @ xp.reshape(onehot_g, (-1,))
    dsg = imul(isub(pg, onehot_g), 1.0 / N)

    # Level two: the examples sorted by group, so that each group's are one contiguous slice.
    order = xp.argsort(gy, stable=True)
    # The one host read; counted in integers, exact for any N.
    counts = [int(n) for n in backend.to_numpy(xp.sum(xp.astype(in_g, gy.dtype), axis=0))]
    Xs = xp.take(X, order, axis=0)
    local = xp.take(position, xp.take(labels, order, axis=0), axis=0)       # label's place in its group
    dXs, dWc, dbc = [], [], []
    start = 0
    for g, n in enumerate(counts):
        S = len(tree.groups[g])
        Wg = xp.take(W_classes, members[g], axis=1)                         # (D, S)
        if n == 0:
            dWc.append(xp.zeros((D, S), dtype=X.dtype, device=device))
            dbc.append(xp.zeros((S,), dtype=X.dtype, device=device))
            continue
        Xg = Xs[start:start + n, :]
        s = Xg @ Wg + xp.take(b_classes, members[g], axis=0)                # (n, S)
        s = s - xp.max(s, axis=1, keepdims=True)
        p = xp.exp(s)
        sum_c = xp.sum(p, axis=1, keepdims=True)
        p = itruediv(p, sum_c)
        onehot = xp.astype(xp.reshape(local[start:start + n], (-1, 1))
                           == xp.arange(S, dtype=local.dtype, device=device), X.dtype)
        loss = loss + (xp.sum(xp.log(sum_c)) - xp.reshape(s, (-1,)) @ xp.reshape(onehot, (-1,)))
        ds = imul(isub(p, onehot), 1.0 / N)
        dXs.append(ds @ xp.matrix_transpose(Wg))
        dWc.append(xp.matrix_transpose(Xg) @ ds)
        dbc.append(xp.sum(ds, axis=0))
        start += n

    # Back to the examples' order and the classes' order.
    dX = dsg @ xp.matrix_transpose(W_groups) + xp.take(xp.concat(dXs, axis=0), xp.argsort(order), axis=0)
    dW_classes = xp.take(xp.concat(dWc, axis=1), back, axis=1)
    db_classes = xp.take(xp.concat(dbc, axis=0), back, axis=0)
    grads = (dX, xp.matrix_transpose(X) @ dsg, xp.sum(dsg, axis=0), dW_classes, db_classes)
    return loss / N, grads
