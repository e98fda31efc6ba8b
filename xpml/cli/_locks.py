"""Locks on the folders the command line writes into, and the clean-up of its killed writers.

Both act on folders that belong to the user, so both are written to touch nothing xpml did not
make:

- :func:`file_lock` opens its lock file without following links (``O_NOFOLLOW``) and refuses one
  that is not a plain file of its own (a symbolic link, a file with other hard links, a file of
  another user, one whose contents are not an xpml lock's). It writes only into a lock file it has
  just created (``O_EXCL``): a file planted under the lock's name is never truncated or written.
- :func:`clean_stale_temp_files` removes a temporary file only when its name carries a token that
  xpml recorded for that folder (:func:`xpml.backend.io.temp_token`, kept in the run folder's
  manifest) and the process that wrote it is gone. A file of yours named like one is never removed.

Why not the ``filelock`` package: its releases before 4 open the lock file with ``O_TRUNC`` and
follow links (the very failure these locks must not have); later ones neither write who holds the
lock nor remove the file. What xpml needs from a lock (refuse links and foreign files, say who
holds it, remove it on release without a race) is this module's few lines on ``flock``.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat

from ..backend.io import TEMP_PREFIX

__all__ = ["LockRefused", "LockedError", "clean_stale_temp_files", "file_lock"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# What a lock written by xpml holds: "pid N" and, after a colon, what the holder is doing.
_HOLDER = re.compile(rb"pid \d+(: [^\n]{0,400})?\n?")
_MAX_NOTE = 300
_MAX_LOCK_BYTES = 512


class LockedError(RuntimeError):
    """A lock is held by another process; ``holder`` is what that process wrote into the lock file."""

    def __init__(self, message: str, holder: str = ""):
        super().__init__(message)
        self.holder = holder


class LockRefused(OSError):
    """The lock's path holds something that is not an xpml lock (a link, a file of yours): left as it is."""


def _lock_fd(fd: int, blocking: bool) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, _MAX_LOCK_BYTES).decode("utf-8", "replace").strip()
    return ""


def _check_lock_file(path: str, fd: int, created: bool) -> None:
    """Refuse what a lock file must not be: anything but a plain file with one name, of this user."""
    st = os.fstat(fd)
    why = None
    if not stat.S_ISREG(st.st_mode):
        why = "is not a plain file"
    elif st.st_nlink != 1:
        why = f"has {st.st_nlink} hard links (another name for a file elsewhere)"
    elif hasattr(os, "getuid") and st.st_uid != os.getuid():
        why = "belongs to another user"
    elif not created:
        if st.st_size > _MAX_LOCK_BYTES:
            why = "is not an xpml lock (too big)"
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            if st.st_size and not _HOLDER.fullmatch(os.read(fd, _MAX_LOCK_BYTES)):
                why = "is not an xpml lock (its contents differ)"
    if why is not None:
        raise LockRefused(f"{path} {why}; xpml neither follows nor writes it: remove it yourself if it is not yours")


def _open(path: str) -> tuple[int, bool]:
    """``(fd, created)``: the lock file, created afresh if absent; never through a link."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644), True
    except FileExistsError:
        pass
    try:
        # Read only: xpml never writes into a lock file it did not create just now.
        return os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC), False
    except FileNotFoundError:
        return _open(path)  # its holder removed it meanwhile
    except OSError as exc:
        if os.path.islink(path):
            raise LockRefused(f"{path} is a symbolic link; xpml does not follow links to lock files: "
                              "remove it yourself if it is not yours") from None
        raise exc


def _same_file(path: str, fd: int) -> bool:
    try:
        current, mine = os.lstat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def file_lock(path, /, *, blocking: bool = True, on_wait=None, note: str = ""):
    """Hold an exclusive advisory lock on the file ``path`` for the ``with`` block.

    Parameters
    ----------
    path : str or path-like
        The lock file, created if absent and removed when the lock is released.
    blocking : bool, keyword-only
        Wait for the lock (True) or raise :class:`LockedError` at once if another process holds it.
    on_wait : callable, keyword-only
        Called once, with what the holder wrote into the lock file, before waiting.
    note : str, keyword-only
        Written into the lock file after this process's id, for whoever finds it locked.

    Raises
    ------
    LockedError
        ``blocking=False`` and another process holds the lock.
    LockRefused
        ``path`` is a symbolic link, a file with other hard links, another user's file, or a file
        whose contents are not an xpml lock's. It is neither written nor removed.

    Notes
    -----
    The lock is ``flock`` (POSIX): the kernel releases it when the holder exits, even by
    ``kill -9``, so a crashed holder never blocks anyone. A lock file a killed holder left is
    taken, checked to be an xpml lock, removed and created anew, so that the one this process
    writes its note into is one it created. The holder removes the file while it still holds the
    lock; a waiter that then wins the lock on the removed file sees that the path no longer names
    it and tries again, so two processes can never both hold the lock.
    """
    if os.name != "posix":  # pragma: no cover (flock and O_NOFOLLOW are POSIX)
        raise OSError("xpml's folder locks need a POSIX system (flock)")
    path = os.fspath(path)
    while True:
        fd, created = _open(path)
        try:
            _check_lock_file(path, fd, created)
            if not _lock_fd(fd, blocking=False):
                holder = _read_holder(fd)
                if not blocking:
                    raise LockedError(f"{path} is locked by another process ({holder or 'unknown'})", holder)
                if on_wait is not None:
                    on_wait(holder)
                    on_wait = None
                _lock_fd(fd, blocking=True)
            same = _same_file(path, fd)
            if same and not created:
                # A killed holder's lock (no one else holds it: we do). Checked above to be an xpml
                # lock with this one name; replace it by one this process creates.
                os.unlink(path)
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)  # removed by its holder (or by us, above): lock the current one
    try:
        with contextlib.suppress(OSError):
            # One line, short enough (in bytes) to be read back as a lock.
            note = " ".join(note.split()).encode()[:_MAX_NOTE].decode("utf-8", "ignore")
            os.write(fd, f"pid {os.getpid()}{': ' + note if note else ''}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            if _same_file(path, fd):
                os.unlink(path)
        os.close(fd)


# ---- temporary files of killed writers ------------------------------------------------------------

_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-([0-9a-f]{16})-[A-Za-z0-9_]+(\.[A-Za-z0-9.]*)?")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # POSIX only: signal 0 checks for existence and sends nothing
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (another user's), or we cannot tell: keep its files
    return True


def clean_stale_temp_files(directory, /, tokens) -> list[str]:
    """Remove the temporary files killed xpml writers left in ``directory``; return their names.

    Only a name of the form ``.tmp-<pid>-<token>-<random><suffix>`` (as
    :func:`xpml.backend.io.atomic_write` names its files) whose ``token`` is one of ``tokens`` (those
    xpml recorded for this folder) and whose process ``pid`` is no longer alive is removed, and only
    when it is a plain file of this user with no other hard link. Call it only under the folder's
    lock. Does nothing where process ids cannot be checked (Windows).
    """
    tokens = set(tokens)
    if os.name != "posix" or not tokens:
        return []
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_NAME.fullmatch(entry.name)
        if m is None or m.group(2) not in tokens or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == os.getuid():
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed
