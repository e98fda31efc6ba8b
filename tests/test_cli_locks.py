"""The command line's folder locks and its clean-up of killed writers: nothing followed through a
link, nothing written or removed that xpml did not make."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from xpml.backend.io import save_npz_atomic, temp_token
from xpml.cli._locks import LockedError, LockRefused, clean_stale_temp_files, file_lock

ROOT = pathlib.Path(__file__).resolve().parents[1]

_HOLD_LOCK = """
import sys
from xpml.cli._locks import file_lock

with file_lock(sys.argv[1], note="holding it"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def _run_until(code: str, *args, line: str):
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == line
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_lock_held_by_another_process_is_refused_then_taken(tmp_path):
    lock = tmp_path / "dir.lock"
    proc = _run_until(_HOLD_LOCK, lock, line="locked")
    try:
        with pytest.raises(LockedError, match=f"locked by another process \\(pid {proc.pid}: holding it\\)"):
            with file_lock(lock, blocking=False):
                pass
    finally:
        proc.communicate("")
    assert proc.returncode == 0 and not lock.exists()  # released and removed
    with file_lock(lock, blocking=False, note="me"):
        assert lock.read_text() == f"pid {os.getpid()}: me\n"
    assert not lock.exists()


def test_a_lock_is_released_when_its_holder_is_killed_and_its_file_replaced(tmp_path):
    lock = tmp_path / "dir.lock"
    proc = _run_until(_HOLD_LOCK, lock, line="locked")
    proc.kill()
    proc.wait()
    assert lock.read_text() == f"pid {proc.pid}: holding it\n"
    with file_lock(lock, blocking=False, note="me"):  # the kernel released it with the process
        assert lock.read_text() == f"pid {os.getpid()}: me\n"
    assert not lock.exists()


def test_a_symlink_as_lock_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "dir.lock").symlink_to(victim)
    with pytest.raises(LockRefused, match="is a symbolic link"):
        with file_lock(tmp_path / "dir.lock", note="xpml run"):
            pass
    assert victim.read_text() == "precious" and (tmp_path / "dir.lock").is_symlink()


def test_a_dangling_symlink_as_lock_creates_nothing(tmp_path):
    (tmp_path / "dir.lock").symlink_to(tmp_path / "made-through-the-link")
    with pytest.raises(LockRefused, match="is a symbolic link"):
        with file_lock(tmp_path / "dir.lock"):
            pass
    assert not (tmp_path / "made-through-the-link").exists()


def test_a_hard_link_as_lock_is_refused_and_its_other_name_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("pid 1: looks like a lock\n")
    os.link(victim, tmp_path / "dir.lock")
    with pytest.raises(LockRefused, match="has 2 hard links"):
        with file_lock(tmp_path / "dir.lock", note="xpml run"):
            pass
    assert victim.read_text() == "pid 1: looks like a lock\n" and (tmp_path / "dir.lock").exists()


def test_a_file_of_yours_named_like_the_lock_is_neither_truncated_nor_removed(tmp_path):
    (tmp_path / "dir.lock").write_text("my notes\n")
    with pytest.raises(LockRefused, match="is not an xpml lock"):
        with file_lock(tmp_path / "dir.lock"):
            pass
    assert (tmp_path / "dir.lock").read_text() == "my notes\n"


def test_only_temporary_files_carrying_a_recorded_token_of_a_dead_writer_are_removed(tmp_path):
    dead = _dead_pid()
    token = temp_token()
    ours = tmp_path / f".tmp-{dead}-{token}-x1y2z3.npz"
    user = tmp_path / f".tmp-{dead}-notes.txt"  # the old pattern: a file of yours
    other = tmp_path / f".tmp-{dead}-{'a' * 16}-x1y2z3.npz"  # xpml's pattern, a token not recorded here
    live = tmp_path / f".tmp-{os.getpid()}-{token}-x1y2z3.npz"  # this process's: alive
    for p in (ours, user, other, live):
        p.write_bytes(b"x")
    linked = tmp_path / f".tmp-{dead}-{token}-linked.npz"
    os.link(user, linked)  # another name of a file of yours
    assert clean_stale_temp_files(tmp_path, []) == []
    assert clean_stale_temp_files(tmp_path, [token]) == [ours.name]
    assert not ours.exists() and user.exists() and other.exists() and live.exists() and linked.exists()


def test_atomic_write_names_its_temporaries_with_pid_and_token(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def replace(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    save_npz_atomic(tmp_path / "c.npz", {"W": np.ones(1)})
    assert seen[0].startswith(f".tmp-{os.getpid()}-{temp_token()}-") and seen[0].endswith(".npz")


def test_a_long_note_is_cut_so_that_the_lock_still_reads_as_one(tmp_path):
    lock = tmp_path / "dir.lock"
    proc = _run_until(_HOLD_LOCK.replace('note="holding it"', 'note="é" * 1000'), lock, line="locked")
    try:
        with pytest.raises(LockedError, match=f"pid {proc.pid}: é"):
            with file_lock(lock, blocking=False):
                pass
    finally:
        proc.kill()
        proc.wait()
    with file_lock(lock, blocking=False):  # the killed holder's lock, recognised and taken
        pass
