"""A small hostile checkpoint must not make the loader allocate what its numbers declare."""

import numpy as np
import pytest

from xpml.backend.io import CorruptFileError, load_npz, npz_members, save_npz_atomic
from xpml.nets import TwoLayerNet, load_model, save_model


def test_declared_sizes_beyond_the_parameters_are_refused_before_allocating(tmp_path):
    path = tmp_path / "net.npz"
    save_model(path, TwoLayerNet(4, 3, 2, seed=0))
    data = load_npz(path)
    data["net/hidden_size"] = np.asarray(10**9)  # 3 KB of file asking for a (4, 10**9) weight matrix
    save_npz_atomic(path, data)
    assert npz_members(path)["param/W1"][0] == (4, 3)
    with pytest.raises(CorruptFileError, match="hidden_size"):
        load_model(path)
