"""xpml's benchmarks: xpml beside the libraries a user would pick instead, run from a checkout.

    python scripts/bench/run.py --only knn,fc --quick      # or: python -m scripts.bench ...

Not installed with xpml: the wheel holds the library and the ``xpml`` command only. One module per
workload, their shared helpers in :mod:`.common`:

- :mod:`.floor`: the float32 matrix-product rate every floor divides by;
- :mod:`.knn`: kNN ``train`` + ``predict`` / ``kneighbors`` against faiss and scikit-learn;
- :mod:`.nets`: ``TwoLayerNet.train`` and ``FullyConnectedNet`` + ``Solver`` against PyTorch;
- :mod:`.linear`: ``LinearSVM`` / ``Softmax`` training against PyTorch;
- :mod:`.shim`: xpml's NumPy path against the same code without the shim;
- :mod:`.scaling`: time against problem size, drawn with the floor;
- :mod:`.knn_depth`: kNN in depth: exact against the bfloat16 candidates, on Dask against one
  process, the search loop with and without overlap, and the cluster model.

Each section is ``run(bench, place)``; each lists its contenders as factories, so a new one (a
backend, a low-precision kNN) is one more entry in that list.
"""

from . import floor, knn, knn_depth, linear, nets, scaling, shim

__all__ = ["DEFAULT_SECTIONS", "ON_REQUEST", "SECTIONS"]

# In the order they run; the floor first (every other figure is read against it).
SECTIONS = {
    "floor": floor.run,
    "knn": knn.run,
    "net": nets.run_twolayer,
    "fc": nets.run_fc,
    "linear": linear.run,
    "shim": shim.run,
    "scaling": scaling.run,
    "knn-precision": knn_depth.run_precision,
    "knn-dask": knn_depth.run_dask,
    "knn-overlap": knn_depth.run_overlap,
    "knn-model": knn_depth.run_model,
}
# Run when asked for (--only): scaling takes a while and draws plots (also --plots); the kNN
# in-depth sections answer design questions rather than compare with the peers.
ON_REQUEST = ("scaling", "knn-precision", "knn-dask", "knn-overlap", "knn-model")
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s not in ON_REQUEST)
