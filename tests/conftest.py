"""The backend matrix: every test that takes ``bk`` (or ``xp``) runs on every usable backend.

Cases, with their pytest ids:

- ``numpy``: NumPy on the CPU.
- ``array_api_strict``: the strict reference namespace on its default device.
- ``array_api_strict:device1``: the same on a non-default device. An array created without
  ``device=`` lands on the default device and mixing it in raises, which is exactly how code
  breaks on a GPU; this case makes the CPU suite fail where CuPy would.
- ``cupy``: CuPy on CUDA device 0, when a usable CUDA device exists.
- ``torch:cpu``, ``jax:cpu``: PyTorch and JAX on the CPU, optional (the ``test`` extra installs
  them). JAX runs with 64-bit types enabled here, as the float64 gradient checks need; the tests
  of JAX without them turn them off locally.
- ``torch:cuda:0``, ``jax:gpu:0``: the same on CUDA device 0, when usable.
- ``numpy:readonly``: NumPy whose arrays refuse writes (the ``numpy_readonly`` backend, registered
  by tests/_readonly.py through ``backend.register_backend``), for the training
  tests, which opt in with ``@pytest.mark.readonly_backend``; elsewhere it is skipped.

Unusable backends are skipped with the reason the shim gives (``backend.list_backends()``, or
``get_backend``'s error for a missing device), shown in the summary by ``-rs``. With
``XPML_REQUIRE_CUPY=1`` (the ``tox -e cuda`` environments) an unusable CuPy is an error instead,
and so is every case named in ``XPML_REQUIRE`` (comma-separated ids, e.g.
``cupy,torch:cuda:0``), so a GPU run cannot pass by quietly testing the CPU only.

``XPML_BACKENDS`` (comma-separated ids, e.g. ``numpy,torch:cpu``) runs only those cases, for a
quick check while working; the others are skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

from xpml import backend

from ._readonly import READONLY_BACKEND, readonly_arrays

# scikit-learn's array API dispatch (tests/test_sklearn.py) needs SciPy's own, switched on before
# SciPy is first imported; nothing above imports it.
os.environ.setdefault("SCIPY_ARRAY_API", "1")


def _session_jax_cache() -> None:
    """JAX's persistent compilation cache in a temporary folder of this session, not the user's.

    The suite compiles thousands of small kernels; written into the per-user cache they would
    stay there (about 5,000 files) after every run. A folder of the session keeps the cache's
    benefit inside the run: the first xdist worker to compile a kernel writes it, the others load
    it (the workers inherit the variable from the controller, which makes the folder before they
    start and removes it at the end). A folder the user chose (``JAX_COMPILATION_CACHE_DIR``) or
    ``XPML_JAX_CACHE=0`` is left as it is.
    """
    global _SESSION_JAX_CACHE
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.environ.get("XPML_JAX_CACHE", "").strip() == "0":
        return
    _SESSION_JAX_CACHE = tempfile.mkdtemp(prefix="xpml-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_JAX_CACHE
    # As xpml's own set-up does (which a user's folder skips): its kernels compile in well under
    # JAX's default threshold of one second, and would otherwise never be cached.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


_SESSION_JAX_CACHE: str | None = None


def _enable_jax_x64() -> None:
    # Before JAX starts: float64 (the gradient checks) needs its 64-bit types, and a second CPU
    # device lets the tests move arrays between JAX devices as on a machine with two GPUs.
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=2".strip()
    try:
        import jax
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)


def _required() -> set[str]:
    required = {label.strip() for label in os.environ.get("XPML_REQUIRE", "").split(",") if label.strip()}
    if os.environ.get("XPML_REQUIRE_CUPY") == "1":
        required.add("cupy")
    return required


def _backend_cases():
    _enable_jax_x64()
    statuses = {s.name: s for s in backend.list_backends()}
    required = _required()
    cases = [
        ("numpy", None),
        ("array_api_strict", None),
        ("array_api_strict", "device1"),
        ("cupy", None),
        ("torch", "cpu"),
        ("jax", "cpu"),
        ("torch", "cuda:0"),
        ("jax", "gpu:0"),
    ]
    selected = {label.strip() for label in os.environ.get("XPML_BACKENDS", "").split(",") if label.strip()}
    for name, device in cases:
        label = name if device is None else f"{name}:{device}"
        if selected and label not in selected and label not in required:
            yield pytest.param(None, id=label, marks=pytest.mark.skip(reason=f"{label}: not in XPML_BACKENDS"))
            continue
        reason = f"{label}: {statuses[name].reason}"
        if statuses[name].usable:
            try:
                yield pytest.param(backend.get_backend(name, device=device), id=label)
                continue
            except backend.BackendUnavailableError as exc:
                reason = str(exc) if str(exc).startswith(label) else f"{label}: {exc}"
        if label in required:
            raise RuntimeError(f"{label} is required here (XPML_REQUIRE / XPML_REQUIRE_CUPY) but not usable: {reason}")
        yield pytest.param(None, id=label, marks=pytest.mark.skip(reason=reason))


_session_jax_cache()  # before JAX is first imported (by _backend_cases)
BACKEND_CASES = list(_backend_cases())

# numpy:readonly: arrays that refuse writes, for the tests of functional state (training and state
# updates), which opt in with @pytest.mark.readonly_backend; other tests are deselected on it.
BACKEND_CASES.append(pytest.param(READONLY_BACKEND, id="numpy:readonly"))


def pytest_addoption(parser):
    parser.addoption(
        "--exhaustive", action="store_true", default=os.environ.get("XPML_EXHAUSTIVE") == "1",
        help="run every combination of a test's options on every backend (the full matrix; also XPML_EXHAUSTIVE=1); "
        "by default NumPy runs every combination and the other backends share them out")


def pytest_configure(config):
    config.addinivalue_line("markers", "readonly_backend: also run on the numpy:readonly backend case")
    # pytest-xdist's own mark (--dist loadgroup), registered here too for runs without xdist.
    config.addinivalue_line("markers", "xdist_group(name): run on the same xdist worker as the rest of the group")
    config.addinivalue_line(
        "markers", "every_combination: options that interact with the backend: run every combination on every "
        "backend, also without --exhaustive")


def pytest_unconfigure(config):
    if _SESSION_JAX_CACHE is not None:
        shutil.rmtree(_SESSION_JAX_CACHE, ignore_errors=True)


def _on_readonly(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("bk") is READONLY_BACKEND


def _covering(items) -> list:
    """Items of the default run: each property on every backend, each combination of options once.

    A test parametrized over the backend and over options (dtype, normalization, activation, ...)
    is a product; most options do not interact with the backend. NumPy runs every combination;
    each other usable backend runs its share of them (combination j on the (j mod B)-th backend)
    and at least one, so every combination runs somewhere and every backend runs every test.
    A skipped backend keeps one item per test, so its reason still shows in the summary.
    """
    groups: dict = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "bk" not in callspec.params or item.get_closest_marker("every_combination"):
            continue
        options = tuple(sorted((k, repr(v)) for k, v in callspec.params.items() if k != "bk"))
        if options:
            groups.setdefault((item.path, item.cls, item.originalname), []).append((item, options))
    dropped = []
    for members in groups.values():
        combos = list(dict.fromkeys(options for _, options in members))
        by_backend: dict = {}
        for item, options in members:
            by_backend.setdefault(_backend_id(item), []).append((item, options))
        usable = [b for b, its in by_backend.items() if b != "numpy" and not its[0][0].get_closest_marker("skip")]
        for b, its in by_backend.items():
            if b == "numpy":
                continue
            if b not in usable:
                dropped.extend(item for item, _ in its[1:])
                continue
            i = usable.index(b)
            share = {combos[j] for j in range(len(combos)) if j % len(usable) == i} | {combos[i % len(combos)]}
            dropped.extend(item for item, options in its if options not in share)
    return dropped


def _backend_id(item) -> str:
    return BACKEND_CASES[item.callspec.indices["bk"]].id


def pytest_collection_modifyitems(config, items):
    dropped = [item for item in items if _on_readonly(item) and item.get_closest_marker("readonly_backend") is None]
    if not config.getoption("--exhaustive"):
        gone = set(dropped)
        dropped += _covering([item for item in items if item not in gone])
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = set(dropped)
        items[:] = [item for item in items if item not in gone]


@pytest.fixture(scope="module")
def dask_cluster():
    """A local Dask cluster for the module: two single-threaded worker processes on 127.0.0.1.

    Module scope, not session: its workers import torch and JAX (about 0.9 GB each), which a
    session-long cluster would hold through the rest of the run. The modules that use it carry
    the ``xdist_group("dask")`` mark, so under pytest-xdist they run one after the other on the
    same worker and never hold two clusters at once. The tests that close a cluster start one of
    their own.
    """
    distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'xpml[dask]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None, worker_dashboard_address=None,
                                  silence_logs=50) as cluster:
        yield cluster


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs():
    """Drop JAX's in-memory compiled programs after each module.

    The suite compiles thousands of programs (each shape its own); kept for the whole session they
    grew each xdist worker past 2 GB. The next module rarely reuses a shape, and one it does is
    loaded from the session's persistent cache (``_session_jax_cache``) instead of compiled again.
    """
    yield
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()


@pytest.fixture(autouse=True)
def _readonly_case(request, monkeypatch):
    """On the numpy:readonly case, every array the test makes refuses writes."""
    if not _on_readonly(request.node):
        yield
        return
    with readonly_arrays(monkeypatch):
        yield


FLOAT_DTYPES = ["float32", "float64"]


@pytest.fixture(params=BACKEND_CASES)
def bk(request) -> backend.Backend:
    """The backend under test: namespace ``bk.xp`` and device ``bk.device``."""
    return request.param


@pytest.fixture
def xp(bk):
    """The namespace of the backend under test."""
    return bk.xp


@pytest.fixture
def device(bk):
    """The device of the backend under test."""
    return bk.device


@pytest.fixture(params=FLOAT_DTYPES)
def dtype_name(request) -> str:
    """float32 and float64, by name."""
    return request.param
