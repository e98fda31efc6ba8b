"""Pickling of xpml's models: their plain state, stamped with the xpml that wrote it.

Every model keeps its hyperparameters, its arrays (of whatever backend it lives on) and its
:class:`backend.Generator`, which pickles by key and counter, so ``pickle``, ``copy.deepcopy``,
``joblib`` and scikit-learn's ``clone`` work on the model's ``__dict__`` as it is. This mixin adds
two things to that:

- a version stamp: the pickle records ``xpml.__version__``, and unpickling refuses a model written
  by a newer xpml release (a newer major or minor version) with an error saying so, instead of
  guessing what a newer layout means;
- transient attributes: what belongs to one process or one cluster (the futures of training
  shards held by Dask workers) is not pickled; the copy starts without it and rebuilds it when
  it is next needed.

A model class takes part with one line, ``class Model(VersionedState): ...``, and lists its
transient attributes, if it has any, in ``_transient``.
"""

from __future__ import annotations

import re

from .. import __version__
from ..backend.errors import InputError

__all__ = ["ModelVersionError", "VersionedState"]

_STAMP = "_xpml_version"


class ModelVersionError(InputError):
    """A pickled model was written by a newer xpml release than this one.

    Examples
    --------
    A state stamped by a future release is refused when it is read back:

    >>> from xpml.nets.model import ModelVersionError, VersionedState
    >>> class Model(VersionedState):
    ...     pass
    >>> state = Model().__getstate__()
    >>> state["_xpml_version"] = "99.0"
    >>> Model.__new__(Model).__setstate__(state)
    Traceback (most recent call last):
        ...
    xpml.nets._state.ModelVersionError: this Model was pickled by xpml 99.0, newer than this xpml ...
    >>> issubclass(ModelVersionError, ValueError)
    True
    """


def release(version: str, /) -> tuple[int, int]:
    """``(major, minor)`` of a version string such as ``"0.2.0"`` or ``"1.4.0.dev3"``.

    Raises
    ------
    ValueError
        For a string that does not start with ``MAJOR.MINOR``.
    """
    match = re.match(r"(\d+)\.(\d+)(?:\D|$)", version) if isinstance(version, str) else None
    if match is None:
        raise InputError(f"not an xpml version: {version!r}")
    return int(match.group(1)), int(match.group(2))


def check_readable(version, /, *, what: str) -> None:
    """Raise :class:`ModelVersionError` unless this xpml can read ``what`` pickled by xpml ``version``.

    A pickle from the same or an older release (or from before versions were stamped, ``None``) is
    read; one from a newer major or minor release, or with a stamp that is not a version, is
    refused: its layout is unknown here.
    """
    if version is None:
        return
    try:
        theirs = release(version)
    except ValueError:
        raise ModelVersionError(f"this {what} was pickled with an unreadable version stamp {version!r}; "
                                "it was not written by xpml, or the pickle is damaged") from None
    if theirs > release(__version__):
        raise ModelVersionError(
            f"this {what} was pickled by xpml {version}, newer than this xpml {__version__}; its layout may have "
            f"changed, so it is not guessed at: upgrade xpml to {theirs[0]}.{theirs[1]} or later to load it")


class VersionedState:
    """Pickle support for a model: a version stamp, and ``_transient`` attributes left out.

    Attributes
    ----------
    _transient : tuple of str
        Attributes tied to this process (futures of a Dask cluster, say): pickled as None.

    Examples
    --------
    A copy goes through the same ``__getstate__`` and ``__setstate__`` as a pickle:

    >>> import copy
    >>> from xpml.nets.model import VersionedState
    >>> class Model(VersionedState):
    ...     _transient = ("cache",)
    ...     def __init__(self):
    ...         self.weights, self.cache = [1.0, 2.0], object()
    >>> sorted(Model().__getstate__())
    ['_xpml_version', 'cache', 'weights']
    >>> clone = copy.deepcopy(Model())
    >>> clone.weights, clone.cache
    ([1.0, 2.0], None)
    """

    _transient: tuple[str, ...] = ()

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        # object.__getstate__ returns the instance's own __dict__ (or None when it is empty): copy it.
        state = dict(state) if state else {}
        for name in self._transient:
            if name in state:
                state[name] = None
        state[_STAMP] = __version__
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        check_readable(state.pop(_STAMP, None), what=type(self).__name__)
        parent = getattr(super(), "__setstate__", None)
        if parent is not None:
            parent(state)
        else:
            self.__dict__.update(state)
