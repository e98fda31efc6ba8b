"""The random search on a Dask cluster: the library's ``client=`` and ``xpml search --scheduler``.

One LocalCluster on 127.0.0.1 (two single-threaded worker processes, tests/conftest.py)
serves the module; the tests
that start a cluster of their own (``--scheduler local:2``, and one to close mid-search) use
127.0.0.1 too. No other address is touched: an
unreachable scheduler is a port on 127.0.0.1 that nothing listens on.
"""

import json
import math
import os
import pathlib
import signal
import socket
import sys
from dataclasses import dataclass

import pytest

distributed = pytest.importorskip("distributed")
pytestmark = [pytest.mark.filterwarnings(
    "ignore:Port .* is already in use:UserWarning",  # 8787, when another cluster holds it
    "ignore:overflow encountered:RuntimeWarning",  # the trials that diverge
    "ignore:invalid value encountered:RuntimeWarning",
), pytest.mark.xdist_group("dask")]  # one cluster at a time (tests/conftest.py)

from xpml.cli import _runs, search  # noqa: E402
from xpml.nets import SearchIncomplete, random_search  # noqa: E402

from ._scripts_support import TINY, assert_one_line_error  # noqa: E402


def _local_cluster(n_workers=2, processes=True):
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes, protocol="tcp",
                                    host="127.0.0.1", dashboard_address=None, silence_logs=50)


def _doomed_cluster():
    """A cluster for a test to close: one worker thread in this process (nothing to spawn)."""
    return _local_cluster(1, processes=False)


@pytest.fixture(scope="module")
def cluster(dask_cluster):
    return dask_cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


@dataclass(frozen=True)
class Bowl:
    """A picklable objective with its peak at lr 1e-2 (the workers import this module)."""

    def __call__(self, setting):
        lr = setting["lr"]
        return {"val_acc": 1 - (math.log10(lr) + 2) ** 2 / 10, "iters": setting.get("iters"), "pid": os.getpid()}


def _without(trials, key):
    return [{k: v for k, v in t.items() if k != key} for t in trials]


# ---- the library --------------------------------------------------------------------------------

def test_library_on_a_client_is_the_search_in_process(client):
    kwargs = dict(trials=6, fine_trials=3, top=2, coarse={"iters": 5}, seed=3)
    here = random_search(Bowl(), {"lr": (1e-5, 1.0)}, **kwargs)
    seen = []
    there = random_search(Bowl(), {"lr": (1e-5, 1.0)}, client=client, on_trial=lambda r, t: seen.append(t["trial"]),
                          **kwargs)
    assert there.complete and there.ranges == here.ranges and there.notes == here.notes
    assert _without(there.trials, "pid") == _without(here.trials, "pid")  # trial for trial, in the order drawn
    assert sorted(seen) == list(range(9))  # each trial handed over once, as it finished
    assert {t["pid"] for t in there.trials}.isdisjoint({os.getpid()})  # they ran on the workers


def test_library_search_on_a_cluster_that_goes_away_is_incomplete():
    with _doomed_cluster() as doomed, distributed.Client(doomed, set_as_default=False) as c:
        def close_after_two(result, trial):
            if len(result.trials) == 2:
                doomed.close()

        with pytest.raises(SearchIncomplete, match="the Dask cluster went away") as info:
            random_search(Bowl(), {"lr": (1e-5, 1.0)}, trials=6, client=c, on_trial=close_after_two)
    partial = info.value.result
    assert not partial.complete and len(partial.trials) >= 2 and partial.planned == 6
    assert [t["trial"] for t in partial.trials] == sorted(t["trial"] for t in partial.trials)


def test_resources_no_worker_offers_are_an_error_not_a_wait(client):
    with pytest.raises(ValueError, match=r"no worker of the cluster offers .*GPU=1.* offer none"):
        random_search(Bowl(), {"lr": (1e-5, 1.0)}, trials=2, client=client, resources={"GPU": 1})


def test_a_closed_client_is_an_error(cluster):
    c = distributed.Client(cluster, set_as_default=False)
    c.close()
    with pytest.raises(ValueError, match="the Dask client is closed"):
        random_search(Bowl(), {"lr": (1e-5, 1.0)}, trials=2, client=c)


# ---- the command --------------------------------------------------------------------------------

SEARCH = [*TINY, "--quiet", "softmax", "--lr-range", "0.1", "1e30", "--trials", "5", "--fine-trials", "2",
          "--num-iters", "20", "--seed", "1"]


def _run(capsys, out, *args):
    rc = search.main([*SEARCH, "--out", str(out), *args])
    captured = capsys.readouterr()
    return rc, captured, json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The search of SEARCH in this process: what every cluster run must reproduce."""
    out = tmp_path_factory.mktemp("in-process")
    assert search.main([*SEARCH, "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    # The seed's draws must give both kinds of trial, or the comparison below proves less.
    assert any(t["diverged"] for t in report["trials"]) and not all(t["diverged"] for t in report["trials"])
    assert report["scheduler"] is None
    return report


def test_scheduler_gives_the_results_of_the_run_in_process(in_process, cluster, tmp_path, capsys):
    rc, captured, report = _run(capsys, tmp_path, "--scheduler", cluster.scheduler_address)
    assert rc == 0, captured.err
    assert report["scheduler"]["address"] == cluster.scheduler_address and report["scheduler"]["workers"] == 2
    assert search.comparable(report) == search.comparable(in_process)
    assert report["trials"] != [] and report["complete"] and report["best"]["val_acc"] == report["trials"][0]["val_acc"]


@pytest.mark.slow  # starts two worker processes
def test_local_cluster(in_process, tmp_path, capsys):
    rc, captured, report = _run(capsys, tmp_path, "--scheduler", "local:2")
    assert rc == 0, captured.err
    assert report["scheduler"]["cluster"] == "LocalCluster" and report["scheduler"]["workers"] == 2
    assert report["scheduler"]["address"].startswith("tcp://127.0.0.1:")
    assert search.comparable(report) == search.comparable(in_process)


class KillTheThirdTrial(distributed.WorkerPlugin):
    """Kills its worker process (SIGKILL) as the third trial of a search starts there, once.

    With two single-threaded workers the third trial starts only after one has finished, so the
    kill comes mid-search, with a trial running and another one done.
    """

    def __init__(self, folder: str):
        self.folder = pathlib.Path(folder)

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or not str(key).startswith("xpml-trial-"):
            return
        (self.folder / f"started-{key}").touch()
        if len(list(self.folder.glob("started-*"))) < 3:
            return
        try:
            fd = os.open(self.folder / "killed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(key).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_worker_has_its_trial_run_again(in_process, cluster, client, tmp_path, capsys):
    folder = tmp_path / "kills"
    folder.mkdir()
    client.register_plugin(KillTheThirdTrial(str(folder)), name="kill-the-third-trial")
    try:
        rc, captured, report = _run(capsys, tmp_path / "out", "--scheduler", cluster.scheduler_address)
    finally:
        client.unregister_worker_plugin("kill-the-third-trial")
    assert rc == 0, captured.err
    killed = (folder / "killed").read_text()  # "xpml-trial-<index>-<tag>"
    assert int(killed.split("-")[2]) in {t["trial"] for t in report["trials"]}  # it ran again, elsewhere
    # Nothing lost, nothing twice: the restarted worker loaded the data again by itself.
    assert search.comparable(report) == search.comparable(in_process)
    client.wait_for_workers(2, timeout=60)  # the nanny has restarted it, for the next tests


def test_a_cluster_closed_mid_search_is_an_error_that_keeps_the_finished_trials(tmp_path, capsys, monkeypatch):
    real = _runs.write_json
    with _doomed_cluster() as doomed:
        def close_after_the_second_trial(path, obj):
            real(path, obj)
            if len(obj["trials"]) == 2:
                doomed.close()

        monkeypatch.setattr(_runs, "write_json", close_after_the_second_trial)
        rc, captured, report = _run(capsys, tmp_path, "--scheduler", doomed.scheduler_address)
    assert_one_line_error(rc, captured.err, "did not finish: the Dask cluster went away",
                          "of the 5 trials drawn had finished", "marked incomplete")
    assert report["complete"] is False and report["best"] is None
    assert len(report["trials"]) >= 2 and report["search_s"] is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_an_error_within_the_timeout(tmp_path, capsys):
    import dask

    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        rc = search.main([*SEARCH, "--out", str(tmp_path / "r"), "--scheduler", address])
    assert_one_line_error(rc, capsys.readouterr().err, f"--scheduler {address}: no Dask scheduler answered",
                          "after 1 s")


@pytest.mark.parametrize(("value", "message"), [
    ("remote", "--scheduler: must be local, local:N or tcp://HOST:PORT, got 'remote'"),
    ("local:0", "--scheduler: must be an integer >= 1, got 0"),
    ("local:two", "--scheduler: an integer is needed, got 'two'"),
    ("tcp://127.0.0.1", "must be local, local:N or tcp://HOST:PORT"),
    ("tcp://127.0.0.1:0", "must be local, local:N or tcp://HOST:PORT"),
    ("http://127.0.0.1:8786", "must be local, local:N or tcp://HOST:PORT"),
])
def test_bad_scheduler_values(value, message, capsys):
    rc = search.main([*SEARCH, "--scheduler", value])
    assert_one_line_error(rc, capsys.readouterr().err, message)


def test_gpus_per_trial_needs_a_scheduler_and_gpu_workers(cluster, tmp_path, capsys):
    rc = search.main([*SEARCH, "--gpus-per-trial", "1"])
    assert_one_line_error(rc, capsys.readouterr().err, "--gpus-per-trial", "needs --scheduler")
    rc = search.main([*SEARCH, "--out", str(tmp_path / "a"), "--gpus-per-trial", "1", "--scheduler",
                      cluster.scheduler_address])
    assert_one_line_error(rc, capsys.readouterr().err, "no worker of the cluster offers", "GPU=1")
    if "dask_cuda" not in sys.modules:
        rc = search.main([*SEARCH, "--out", str(tmp_path / "b"), "--gpus-per-trial", "1", "--scheduler", "local"])
        assert_one_line_error(rc, capsys.readouterr().err, "--gpus-per-trial 1: the local cluster has no GPU workers")


def test_without_dask_the_scheduler_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "dask", None)
    rc = search.main([*SEARCH, "--scheduler", "local"])
    assert_one_line_error(rc, capsys.readouterr().err, "--scheduler runs the trials on Dask, which is not installed",
                          "pip install 'xpml[dask]'")


def test_local_uses_dask_cuda_when_it_sees_a_gpu(monkeypatch):
    from types import ModuleType

    from xpml.cli import _cluster

    class FakeCUDACluster:
        pass

    fake = ModuleType("dask_cuda")
    fake.LocalCUDACluster = FakeCUDACluster
    fake_utils = ModuleType("dask_cuda.utils")
    gpus = {"n": 2}
    fake_utils.get_n_gpus = lambda: gpus["n"]
    monkeypatch.setitem(sys.modules, "dask_cuda", fake)
    monkeypatch.setitem(sys.modules, "dask_cuda.utils", fake_utils)
    factory, kwargs = _cluster.local_cluster(None, 1)
    assert factory is FakeCUDACluster
    assert kwargs["resources"] == {"GPU": 1} and kwargs["host"] == "127.0.0.1" and kwargs["n_workers"] is None
    gpus["n"] = 0
    factory, kwargs = _cluster.local_cluster(3, 0)
    assert factory is distributed.LocalCluster and kwargs["n_workers"] == 3 and "resources" not in kwargs


def test_workers_load_the_data_once(client):
    from xpml.cli import _cluster

    spec = {"dataset": "digits", "backend": "numpy", "dtype": "float32", "data_dir": None, "num_train": 50,
            "num_val": 20, "num_test": 20, "threads": 1}

    def ids(name):
        data, bk, threads = _cluster.worker_data(name)
        return id(data), data.sizes(), bk.label, threads

    def on_each_worker(name):
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        return [client.submit(ids, name, workers=[w], pure=False).result() for w in workers]

    with _cluster.share_data(client, spec) as name:
        first = on_each_worker(name)
        assert on_each_worker(name) == first and len(first) == 2  # the same objects: loaded once
        assert all(v[1:] == ({"train": 50, "val": 20, "test": 20}, "numpy", 1) for v in first)
    with pytest.raises(KeyError):  # dropped at the end of the search
        on_each_worker(name)
