"""The sections of ``xpml bench``: one module per workload, their shared helpers in :mod:`.common`.

- :mod:`.floor`: the float32 matrix-product rate every floor divides by;
- :mod:`.knn`: kNN ``train`` + ``predict`` / ``kneighbors`` against faiss and scikit-learn;
- :mod:`.nets`: ``TwoLayerNet.train`` and ``FullyConnectedNet`` + ``Solver`` against PyTorch;
- :mod:`.linear`: ``LinearSVM`` / ``Softmax`` training against PyTorch;
- :mod:`.shim`: xpml's NumPy path against the same code without the shim;
- :mod:`.scaling`: time against problem size, drawn with the floor;
- :mod:`.masks`: drawing dropout masks, on the host (as before) against the device generator;
- :mod:`.compile`: a two-layer step eager against compiled (``jax.jit``, ``torch.compile``).

Each section is ``run(bench, place)``; each lists its contenders as factories, so a new one (a
backend, a low-precision kNN) is one more entry in that list.
"""

from . import compile, floor, knn, linear, masks, nets, scaling, shim

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
    "masks": masks.run,
    "compile": compile.run,
}
# Run when asked for (--only): scaling takes a while and draws plots (also --plots); masks and
# compile measure xpml against its own alternatives (a change made, a compiler not adopted).
ON_REQUEST = ("scaling", "masks", "compile")
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s not in ON_REQUEST)
