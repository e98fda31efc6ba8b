"""The generator: Threefry-2x32 on the device, identical draws on every backend, picklable state."""

import copy
import math
import pickle

import numpy as np
import pytest

from xpml import backend
from xpml.backend._random import key_schedule, threefry2x32
from xpml.backend.testing import assert_placement

# Known-answer vectors of Threefry-2x32-20: (counter, key) -> output, from Random123's
# kat_vectors (the same three are JAX's testThreefry2x32).
KAT = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0)),
]


def _draws(rng):
    return {
        "normal": rng.normal((4, 3), scale=0.01),
        "normal64": rng.normal((5,), dtype="float64"),
        "uniform": rng.uniform((6,), low=-1.0, high=2.0),
        "uniform64": rng.uniform((3, 2), dtype="float64"),
        "integers": rng.integers(0, 10, (7,)),
        "integers_wide": rng.integers(-5, 2**32 - 5, (9,)),
        "choice_rep": rng.choice(10, 8, replace=True),
        "choice_norep": rng.choice(10, 10, replace=False),
        "permutation": rng.permutation(9),
        "bernoulli": rng.bernoulli((3, 3), p=0.5),
        "bernoulli_exact_bits": rng.bernoulli((40,), p=0.375),
        "bernoulli_full_word": rng.bernoulli((5, 7), p=0.8, dtype="float64"),
        # Whole words, twice in a row (JAX carries the counter), then fewer bits for a dyadic keep.
        "dropout_32_bits": rng.dropout_mask((4, 33), keep=0.8),
        "dropout_32_bits_again": rng.dropout_mask((4, 33), keep=0.9),
        "dropout_float64": rng.dropout_mask((50,), keep=0.97, dtype="float64"),
        "dropout_rare": rng.dropout_mask((7,), keep=1e-5),
        "dropout_dyadic": rng.dropout_mask((3, 5), keep=0.5),
        "spawned": rng.spawn().uniform((4,)),
    }


def test_same_seed_same_draws_on_every_backend(bk):
    reference = _draws(backend.Generator(1234))  # numpy on the host
    draws = _draws(backend.Generator(1234, xp=bk.xp, device=bk.device))
    for key, ref in reference.items():
        got = draws[key]
        dtype = backend.index_dtype(bk.xp, bk.device) if ref.dtype == np.int64 else getattr(bk.xp, ref.dtype.name)
        assert_placement(got, backend=bk, dtype=dtype, shape=ref.shape)
        # Bit-identical, not merely close: a CPU and a GPU run start from the same numbers.
        np.testing.assert_array_equal(backend.to_numpy(got), ref, err_msg=key)


def test_device_draws_copy_nothing_from_the_host(bk, monkeypatch):
    # Everything but normal() is computed on the device from the key and the counter: no array
    # is made from host data once the generator exists.
    rng = backend.Generator(3, xp=bk)

    def refuse(*args, **kwargs):
        raise AssertionError("a device draw called asarray: a host-to-device copy")

    monkeypatch.setattr(bk.xp, "asarray", refuse)
    for draw in (rng.uniform((5,)), rng.integers(0, 7, (4,)), rng.choice(9, 3, replace=False),
                 rng.permutation(6), rng.bernoulli((8,), p=0.3), rng.dropout_mask((8,), keep=0.8)):
        assert_placement(draw, backend=bk, shape=draw.shape)


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_threefry_known_answers_on_every_backend(bk, counter, key, expected):
    wide = bk.name == "torch"
    dt = bk.xp.int64 if wide else bk.xp.uint32
    x0, x1 = (bk.xp.full((3,), c, dtype=dt, device=bk.device) for c in counter)
    keys = [tuple(bk.xp.full((), k, dtype=dt, device=bk.device) for k in pair) for pair in key_schedule(*key)]
    y0, y1 = threefry2x32(x0, x1, keys, wide=wide)
    assert_placement(y0, backend=bk, dtype=dt, shape=(3,))
    assert backend.to_numpy(y0).tolist() == [expected[0]] * 3
    assert backend.to_numpy(y1).tolist() == [expected[1]] * 3


def test_threefry_matches_jax_on_random_inputs():
    jax_random = pytest.importorskip("jax.extend.random", reason="jax is not installed")
    host = np.random.default_rng(0)
    for _ in range(5):
        key = host.integers(0, 2**32, 2, dtype=np.uint32)
        counts = host.integers(0, 2**32, 64, dtype=np.uint32)
        expected = np.asarray(jax_random.threefry_2x32(key, counts))
        y0, y1 = threefry2x32(counts[:32].copy(), counts[32:].copy(), key_schedule(int(key[0]), int(key[1])))
        np.testing.assert_array_equal(np.concatenate([y0, y1]), expected)


def test_key_is_jax_key_of_the_seed():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    for seed in (0, 1234, 2**40 + 7):
        expected = tuple(int(k) for k in jax.random.key_data(jax.random.PRNGKey(seed)))
        assert backend.Generator(seed).key == expected


def test_stream_is_the_cipher_of_consecutive_counters():
    rng = backend.Generator(99)
    words = rng._words(7)  # 4 blocks: their first words, then their second, cut to 7
    y0, y1 = threefry2x32(np.arange(4, dtype=np.uint32), np.zeros(4, np.uint32), key_schedule(*rng.key))
    np.testing.assert_array_equal(words, np.concatenate([y0, y1])[:7])
    assert rng.counter == 4


def test_a_draw_depends_only_on_the_draws_before_it():
    a, b = backend.Generator(5), backend.Generator(5)
    a.uniform((10,))            # 10 words: 5 blocks
    b.integers(0, 3, (5,))       # 2 words per value: 5 blocks
    assert a.counter == b.counter == 5
    np.testing.assert_array_equal(a.bernoulli((50,), p=0.8), b.bernoulli((50,), p=0.8))


def test_bernoulli_packs_as_many_draws_per_word_as_p_allows():
    # p = 0.5 needs one bit per draw, 0.25 two, 0.8 all 32: 640 draws take 20, 40 and 640 words.
    for p, words in ((0.5, 20), (0.25, 40), (0.8, 640)):
        rng = backend.Generator(0)
        rng.bernoulli((640,), p=p)
        assert rng.counter == words // 2


def test_dropout_mask_across_the_high_counter_word(bk):
    # A draw whose blocks straddle counter 2**32 (JAX compiles draws that do not) on every backend.
    rng, reference = backend.Generator(4, xp=bk), backend.Generator(4)
    rng.counter = reference.counter = 2**32 - 3
    np.testing.assert_array_equal(backend.to_numpy(rng.dropout_mask((9, 7), keep=0.8)),
                                  reference.dropout_mask((9, 7), keep=0.8))
    assert rng.counter == reference.counter == 2**32 + 29  # 63 words of 32 bits: 32 blocks


def test_draws_agree_where_arrays_refuse_writes(monkeypatch):
    # The cipher and the masks write into their temporaries where they may; the functional path
    # (JAX, read-only arrays) must give the very same numbers.
    from ._readonly import readonly_arrays

    expected = _draws(backend.Generator(1234))
    with readonly_arrays(monkeypatch):
        got = _draws(backend.Generator(1234))
        assert not got["dropout_32_bits"].flags.writeable
    for key, ref in expected.items():
        np.testing.assert_array_equal(np.asarray(got[key]), ref, err_msg=key)


def test_dtypes_and_ranges(bk):
    rng = backend.Generator(0, xp=bk)
    assert rng.normal((3,)).dtype == bk.xp.float32
    assert rng.normal((3,), dtype="float64").dtype == bk.xp.float64
    assert rng.uniform((3,)).dtype == bk.xp.float32
    ints = backend.to_numpy(rng.integers(3, 7, (1000,)))
    assert ints.min() == 3 and ints.max() == 6
    perm = backend.to_numpy(rng.permutation(50))
    assert sorted(perm.tolist()) == list(range(50))
    no_rep = backend.to_numpy(rng.choice(20, 20, replace=False))
    assert len(set(no_rep.tolist())) == 20
    u = backend.to_numpy(rng.uniform((1000,), low=-2.0, high=3.0))
    assert u.min() >= -2.0 and u.max() <= 3.0
    assert rng.permutation(0).shape == (0,)


@pytest.mark.parametrize("p", [0.0, 0.125, 0.3, 0.5, 0.8, 1.0])
def test_bernoulli_frequency(p):
    n = 200_000
    mean = float(np.mean(backend.Generator(11).bernoulli((n,), p=p)))
    assert abs(mean - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_uniform_integer_and_normal_moments():
    rng = backend.Generator(12)
    n = 200_000
    u = rng.uniform((n,), dtype="float64")
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    counts = np.bincount(rng.integers(0, 7, (n,)), minlength=7)
    assert np.all(np.abs(counts - n / 7) < 5 * math.sqrt(n / 7))
    z = rng.normal((n,), loc=1.0, scale=2.0, dtype="float64")
    assert abs(z.mean() - 1.0) < 5 * 2.0 / math.sqrt(n)
    assert abs(z.std() - 2.0) < 0.02


def test_different_seeds_differ():
    a = backend.to_numpy(backend.Generator(1).normal((10,)))
    b = backend.to_numpy(backend.Generator(2).normal((10,)))
    assert not np.array_equal(a, b)


def test_spawn_is_deterministic_and_independent():
    parent = backend.Generator(5)
    a = parent.spawn()
    b = backend.Generator(5).spawn()
    np.testing.assert_array_equal(a.normal((4,)), b.normal((4,)))
    assert a.key != parent.key and parent.spawn().key != a.key


def test_numpy_scalar_arguments_keep_the_dtype(bk):
    rng = backend.Generator(0, xp=bk)
    assert rng.normal((2,), scale=np.float64(0.1)).dtype == bk.xp.float32
    assert rng.uniform((2,), low=np.float64(-1), high=np.float64(1)).dtype == bk.xp.float32
    assert rng.bernoulli((2,), p=np.float64(0.5)).dtype == bk.xp.float32
    assert rng.integers(np.int64(2), np.int64(5), (2,)).dtype == backend.index_dtype(bk.xp, bk.device)
    assert rng.choice(np.int64(5), np.int64(3)).shape == (3,)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "joblib"])
def test_pickling_keeps_backend_and_state(bk, how, tmp_path):
    rng = backend.Generator(21, xp=bk)
    rng.uniform((3,))
    holder = {"rng": rng, "backend": bk, "data": rng.normal((2, 2))}
    if how == "pickle":
        again = pickle.loads(pickle.dumps(holder))
    elif how == "deepcopy":
        again = copy.deepcopy(holder)
    else:
        joblib = pytest.importorskip("joblib", reason="joblib is not installed")
        joblib.dump(holder, tmp_path / "holder.joblib")
        again = joblib.load(tmp_path / "holder.joblib")
    assert again["backend"] == bk and again["rng"].backend == bk
    assert again["rng"].key == rng.key and again["rng"].counter == rng.counter
    # The copy continues the stream where the original stands, and is independent of it.
    for draw in ("uniform", "bernoulli"):
        kwargs = {"p": 0.3} if draw == "bernoulli" else {}
        x, y = getattr(rng, draw)((6,), **kwargs), getattr(again["rng"], draw)((6,), **kwargs)
        assert_placement(y, like=x)
        np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(x))


def test_jax_without_64_bit_types():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    reference = backend.Generator(8)
    expected = {"i": reference.integers(0, 1000, (6,)), "u": reference.uniform((4,)),
                "b": reference.bernoulli((9,), p=0.7), "p": reference.permutation(5)}
    with jax.enable_x64(False):
        rng = backend.Generator(8, xp="jax:cpu")
        got = {"i": rng.integers(0, 1000, (6,)), "u": rng.uniform((4,)),
               "b": rng.bernoulli((9,), p=0.7), "p": rng.permutation(5)}
        assert got["i"].dtype == got["p"].dtype == rng.xp.int32
        for k, v in expected.items():
            np.testing.assert_array_equal(backend.to_numpy(got[k]), v, err_msg=k)
        with pytest.raises(ValueError, match="jax_enable_x64"):
            rng.normal((2,), dtype="float64")
        with pytest.raises(ValueError, match="do not fit the index dtype"):
            rng.integers(0, 2**32, (2,))


def test_bad_arguments():
    with pytest.raises(TypeError, match="seed must be an int"):
        backend.Generator(1.5)
    with pytest.raises(ValueError, match="non-negative"):
        backend.Generator(-1)
    with pytest.raises(ValueError, match="below 2\\*\\*64"):
        backend.Generator(2**64)
    rng = backend.Generator(0)
    with pytest.raises(ValueError, match="without replacement"):
        rng.choice(3, 5, replace=False)
    with pytest.raises(ValueError, match="empty range"):
        rng.choice(0, 1)
    with pytest.raises(ValueError, match="probability in \\[0, 1\\]"):
        rng.bernoulli((2,), p=1.5)
    with pytest.raises(ValueError, match="keep is a probability in \\[0, 1\\]"):
        rng.dropout_mask((2,), keep=-0.1)
    with pytest.raises(ValueError, match="low < high"):
        rng.integers(5, 5)
    with pytest.raises(ValueError, match="low < high"):
        rng.uniform((2,), low=1.0, high=1.0)


def test_counters_carry_into_their_high_word(bk):
    # Block 2**32 - 1 is followed by block 2**32, whose counter words are (0, 1), on every backend.
    rng = backend.Generator(17, xp=bk)
    rng.counter = 2**32 - 1
    words = backend.to_numpy(rng._words(6))
    counters = np.array([2**32 - 1, 0, 1], np.uint32), np.array([0, 1, 1], np.uint32)
    y0, y1 = threefry2x32(*counters, key_schedule(*rng.key))
    np.testing.assert_array_equal(words, np.concatenate([y0, y1]))
    assert rng.counter == 2**32 + 2
