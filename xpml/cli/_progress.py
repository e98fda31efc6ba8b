"""Progress bars for the long loops: training iterations, kNN query chunks, search trials, downloads.

Bars go to stderr (stdout stays clean for the table or ``--json``), are off with ``--quiet``, and
switch themselves off when stderr is not a terminal (tqdm's ``disable=None``), so logs and pipes
get no carriage-return noise. Without tqdm (a bare install) there are no bars, and a run that
would have shown them says so once.
"""

from __future__ import annotations

import sys

__all__ = ["Progress", "TrainingBar"]


class _NoBar:
    """What tqdm's bar offers the commands, doing nothing: for a run without tqdm."""

    disable = True

    def __init__(self, iterable=None, /, *, total=None, **kwargs):
        self.iterable, self.total, self.n = iterable, total, 0

    def __iter__(self):
        return iter(self.iterable if self.iterable is not None else ())

    def update(self, n=1) -> None:
        self.n += n

    def set_postfix_str(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _tqdm(quiet: bool):
    """tqdm's bar factory, or :class:`_NoBar` without tqdm (said once, where bars would have shown)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if not quiet and sys.stderr.isatty():
            from ._cli import note_missing

            note_missing("tqdm", skipped="no progress bars are shown")
        return _NoBar
    return tqdm


class Progress:
    """Makes bars that all obey one ``--quiet`` flag."""

    def __init__(self, *, quiet: bool = False):
        self.disable = True if quiet else None  # None: tqdm turns itself off when not on a TTY

    def __call__(self, iterable=None, /, *, desc=None, total=None, unit="it", leave=False, **kwargs):
        """A tqdm bar around ``iterable`` (tqdm-like: usable as ``progress(iterable)``)."""
        bar = _tqdm(self.disable is True)
        return bar(iterable, desc=desc, total=total, unit=unit, leave=leave, disable=self.disable, dynamic_ncols=True,
                   **kwargs)

    def wrapper(self, *, desc: str, unit: str = "it"):
        """A one-argument ``progress(iterable)`` for library functions that take a progress hook."""
        return lambda iterable: self(iterable, desc=desc, unit=unit)

    def training(self, total: int, *, desc: str, every: int = 25) -> TrainingBar:
        """A bar for ``total`` training iterations; use it as the ``callback`` of ``train``."""
        return TrainingBar(self(total=total, desc=desc, unit="iter"), every=every)


class TrainingBar:
    """A training-loop callback ``(it, loss)`` that advances a bar and shows the current loss.

    The loss is a 0-d device array; reading it (``float``) waits for the device, so it is read
    back only every ``every`` iterations, and never when the bar is off.
    """

    def __init__(self, bar, *, every: int = 25):
        self.bar = bar
        self.every = max(1, int(every))

    def __call__(self, it, loss, *args, **kwargs) -> None:
        if self.bar.disable:
            return
        done = int(it) + 1
        if done % self.every == 0 or done == self.bar.total:
            self.bar.n = done  # then one redraw with the new loss (at most one per `every` iterations)
            self.bar.set_postfix_str(f"loss {float(loss):.4g}", refresh=True)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> TrainingBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
