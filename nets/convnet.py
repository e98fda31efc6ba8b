"""Convolutional nets written in the course notes' notation, and assignment 2's ``ThreeLayerConvNet``.

The notes' pattern ``INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC`` is written
as a string of tokens in their VGG notation, separated by spaces::

    "CONV3-64 CONV3-64 POOL2 CONV3-128 CONV3-128 POOL2 FC-256 FC-10"

Grammar (case does not matter):

``CONV<F>-<K>``, ``CONV<FH>x<FW>-<K>``
    K filters of F x F (or FH x FW), followed by a ReLU. Stride 1 and the padding that keeps the
    size, ``P = d (F - 1) / 2`` (rounded down; 0 for rectangular filters). Options, appended:
    ``/s<S>`` stride, ``/p<P>`` zero padding, ``/d<D>`` dilation, ``/linear`` no ReLU.
    ``CONV3-64/s2/p0/d2``.
``POOL<F>``
    F x F max pooling with stride F (``POOL2``: 2 x 2, stride 2); ``/s<S>`` another stride
    (``POOL3/s2``, the overlapping pooling of AlexNet).
``FC-<N>``
    A fully connected layer of N outputs, followed by a ReLU unless it is the last token: the
    last token must be an FC, whose outputs are the class scores.
``BN``, ``GN<G>``
    Batch normalization (spatial after a CONV) or group normalization with G groups (after a
    CONV only) of the layer just before, between it and its ReLU.
``DROP<p>``
    Inverted dropout after the layer just before (and its ReLU), keeping each unit with
    probability p, as the course's ``dropout_param['p']``: ``DROP0.5``.

Sizes are checked when the net is built: a layer whose ``(W - F + 2P) / S + 1`` is not an integer
is a ``ValueError`` naming the layer and its sizes.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from .. import backend
from ..backend._arith import iadd
from ..backend.errors import InputError, InputTypeError
from ..backend.validation import check_data
from ._model import Net, as_float, as_int, check_size, dtype_name
from .checkpoint import register_model
from .conv_layers import (
    conv_backward_fast,
    conv_forward_fast,
    conv_output_size,
    max_pool_backward_fast,
    max_pool_forward_fast,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from .init import INIT_SCHEMES, init_weights
from .layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    keep_probability,
    relu_backward,
    relu_forward,
)
from .losses import l2_penalty, softmax_loss
from .model import CourseFace

__all__ = ["VGG16", "ConvNet", "Layer", "Summary", "ThreeLayerConvNet", "parse_architecture", "summarize"]

# The notes' VGG-16 (configuration D of Simonyan and Zisserman), on 224 x 224 x 3 images.
VGG16 = ("CONV3-64 CONV3-64 POOL2 CONV3-128 CONV3-128 POOL2 CONV3-256 CONV3-256 CONV3-256 POOL2 "
         "CONV3-512 CONV3-512 CONV3-512 POOL2 CONV3-512 CONV3-512 CONV3-512 POOL2 FC-4096 FC-4096 FC-1000")


# ---- the architecture string ------------------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    """One layer of a :class:`ConvNet`: ``kind`` is ``"conv"``, ``"pool"`` or ``"fc"``.

    ``size`` is (FH, FW) of a filter or pool window; ``outputs`` the filters or FC outputs;
    ``norm`` None, ``"batchnorm"`` or ``"groupnorm"`` (``groups`` G); ``keep`` the dropout keep
    probability (1: none); ``relu`` whether a ReLU follows.

    Examples
    --------
    >>> from xpml.nets.convnet import Layer
    >>> Layer("conv", "CONV3-8", (3, 3), 8, pad=1).text()
    'CONV3-8/s1/p1/d1'
    >>> Layer("fc", "FC-10", outputs=10, relu=False).text()
    'FC-10'
    """

    kind: str
    token: str
    size: tuple = (1, 1)
    outputs: int = 0
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    relu: bool = True
    norm: str | None = None
    groups: int = 0
    keep: float = 1.0

    def text(self) -> str:
        """The layer in the grammar's spelled-out form (which parses back to this layer)."""
        if self.kind == "fc":
            base = f"FC-{self.outputs}"
        elif self.kind == "pool":
            base = f"POOL{self.size[0]}/s{self.stride}" if self.size[0] == self.size[1] else None
        else:
            fh, fw = self.size
            f = f"{fh}" if fh == fw else f"{fh}x{fw}"
            base = f"CONV{f}-{self.outputs}/s{self.stride}/p{self.pad}/d{self.dilation}" + (
                "" if self.relu else "/linear")
        extra = {"batchnorm": " BN", "groupnorm": f" GN{self.groups}", None: ""}[self.norm]
        return base + extra + (f" DROP{self.keep:g}" if self.keep != 1.0 else "")


_CONV = re.compile(r"CONV(\d+)(?:X(\d+))?-(\d+)((?:/[A-Z]+\d*)*)")
_POOL = re.compile(r"POOL(\d+)((?:/[A-Z]+\d*)*)")
_FC = re.compile(r"FC-(\d+)")
_GN = re.compile(r"GN(\d+)")
_DROP = re.compile(r"DROP(\d*\.?\d+)")
_EXPECTED = ("CONV<F>-<K>[/s<S>][/p<P>][/d<D>][/linear], POOL<F>[/s<S>], FC-<N>, BN, GN<G> or DROP<p> "
             "(e.g. 'CONV3-64 POOL2 FC-10')")


def _options(token: str, text: str, allowed: str) -> dict:
    out = {}
    for opt in filter(None, text.split("/")):
        m = re.fullmatch(r"([A-Z]+)(\d*)", opt)
        key = m.group(1) if m else opt
        if key == "LINEAR" and "l" in allowed and not m.group(2):
            out["linear"] = True
        elif len(key) == 1 and key.lower() in allowed and m.group(2):
            out[key.lower()] = int(m.group(2))
        else:
            names = {"s": "/s<stride>", "p": "/p<pad>", "d": "/d<dilation>", "l": "/linear"}
            raise InputError(f"architecture token {token!r}: unknown option '/{opt.lower()}'; expected "
                             f"{', '.join(names[a] for a in allowed)}")
    return out


def parse_architecture(text, /) -> tuple[Layer, ...]:
    """The layers of an architecture string (see the module docstring for the grammar).

    Raises
    ------
    ValueError
        For a token that does not parse (the message shows it and what was expected), a BN, GN
        or DROP with no layer before it, a CONV or POOL after an FC, or a last token that is not
        an FC.

    Examples
    --------
    >>> from xpml.nets.convnet import parse_architecture
    >>> layers = parse_architecture("CONV3-4 BN POOL2 FC-10")
    >>> [layer.kind for layer in layers]
    ['conv', 'pool', 'fc']
    >>> layers[0].size, layers[0].pad, layers[0].norm, layers[1].stride
    ((3, 3), 1, 'batchnorm', 2)
    >>> [layer.text() for layer in layers]
    ['CONV3-4/s1/p1/d1 BN', 'POOL2/s2', 'FC-10']
    >>> parse_architecture("CONV3-4 POOL2")
    Traceback (most recent call last):
        ...
    xpml.backend.errors.InputError: architecture must end with an FC layer giving the class scores (e.g. FC-10), ...
    """
    if not isinstance(text, str):
        raise InputTypeError(f"architecture must be a string such as 'CONV3-32 POOL2 FC-10', got {type(text).__name__}")
    layers: list[Layer] = []
    tokens = text.split()
    if not tokens:
        raise InputError(f"architecture is empty; expected tokens {_EXPECTED}")
    for token in tokens:
        up = token.upper()
        if m := _CONV.fullmatch(up):
            fh, fw = int(m.group(1)), int(m.group(2) or m.group(1))
            opts = _options(token, m.group(4), "spdl")
            d = opts.get("d", 1)
            default_pad = d * (fh - 1) // 2 if fh == fw else 0
            layer = Layer("conv", token, (fh, fw), int(m.group(3)), opts.get("s", 1), opts.get("p", default_pad), d,
                          relu=not opts.get("linear", False))
        elif m := _POOL.fullmatch(up):
            f = int(m.group(1))
            layer = Layer("pool", token, (f, f), stride=_options(token, m.group(2), "s").get("s", f), relu=False)
        elif m := _FC.fullmatch(up):
            layer = Layer("fc", token, outputs=int(m.group(1)))
        elif up == "BN" or _GN.fullmatch(up):
            prev = _previous(layers, token, "a normalization")
            if prev.kind == "pool" or prev.norm:
                raise InputError(f"architecture token {token!r} must follow a CONV or FC without a normalization, "
                                 f"not {prev.token!r}")
            if up == "BN":
                layers[-1] = dataclasses.replace(prev, norm="batchnorm")
            elif prev.kind != "conv":
                raise InputError(f"architecture token {token!r}: group normalization needs a CONV before it, "
                                 f"not {prev.token!r}")
            else:
                layers[-1] = dataclasses.replace(prev, norm="groupnorm", groups=int(_GN.fullmatch(up).group(1)))
            continue
        elif m := _DROP.fullmatch(up):
            prev = _previous(layers, token, "dropout")
            keep = keep_probability(float(m.group(1)), name=f"the keep probability of {token!r}")
            layers[-1] = dataclasses.replace(prev, keep=keep)
            continue
        else:
            raise InputError(f"architecture token {token!r} does not parse; expected {_EXPECTED}")
        for name, value in (("size", min(layer.size)), ("outputs", layer.outputs if layer.kind != "pool" else 1),
                            ("stride", layer.stride), ("dilation", layer.dilation)):
            if value < 1:
                raise InputError(f"architecture token {token!r}: the {name} must be at least 1")
        if layer.kind != "fc" and layers and layers[-1].kind == "fc":
            raise InputError(f"architecture token {token!r}: a {layer.kind.upper()} cannot follow an FC layer "
                             "(the pattern is [CONV]*N POOL? ... [FC]*K FC)")
        layers.append(layer)
    if layers[-1].kind != "fc":
        raise InputError(f"architecture must end with an FC layer giving the class scores (e.g. FC-10), "
                         f"not {layers[-1].token!r}")
    last = layers[-1]
    layers[-1] = dataclasses.replace(last, relu=False)
    if last.norm or last.keep != 1.0:
        raise InputError(f"the last FC layer {last.token!r} gives the class scores: no normalization or dropout "
                         "may follow it")
    return tuple(layers)


def _previous(layers, token: str, what: str) -> Layer:
    if not layers:
        raise InputError(f"architecture token {token!r}: {what} needs a CONV or FC layer before it")
    return layers[-1]


def _input_dim(input_dim) -> tuple[int, int, int]:
    if isinstance(input_dim, (str, bytes)) or not hasattr(input_dim, "__len__") or len(input_dim) != 3:
        raise InputError(f"input_dim must be (C, H, W), e.g. (3, 32, 32), got {input_dim!r}")
    return tuple(as_int(v, name=f"input_dim[{i}]") for i, v in enumerate(input_dim))


def _shapes(layers, input_dim, *, flat_fc: bool = True):
    """The output shape (without N) of every layer; checks every size on the way."""
    shape = input_dim
    out = []
    for i, layer in enumerate(layers, start=1):
        name = f"layer {i} ({layer.token})"
        if layer.kind == "fc":
            shape = (layer.outputs,)
        else:
            if len(shape) != 3:
                raise InputError(f"{name}: needs an image input, got shape {shape}")
            C, H, W = shape
            geo = dict(stride=layer.stride, pad=layer.pad if layer.kind == "conv" else 0,
                       dilation=layer.dilation if layer.kind == "conv" else 1, name=name)
            h = conv_output_size(H, layer.size[0], axis="height", **geo)
            w = conv_output_size(W, layer.size[1], axis="width", **geo)
            if layer.norm == "groupnorm" and layer.outputs % layer.groups:
                raise InputError(f"{name}: GN{layer.groups} needs a number of groups that divides the "
                                 f"{layer.outputs} channels")
            shape = (layer.outputs if layer.kind == "conv" else C, h, w)
        out.append(shape)
    return out


def _param_shapes(layers, input_dim) -> dict:
    shapes = {}
    prev = input_dim
    k = 0
    for layer, shape in zip(layers, _shapes(layers, input_dim), strict=True):
        if layer.kind != "pool":
            k += 1
            if layer.kind == "conv":
                shapes[f"W{k}"] = (layer.outputs, prev[0], *layer.size)
            else:
                shapes[f"W{k}"] = (math.prod(prev), layer.outputs)
            shapes[f"b{k}"] = (layer.outputs,)
            if layer.norm:
                norm_shape = (1, layer.outputs, 1, 1) if layer.norm == "groupnorm" else (layer.outputs,)
                shapes[f"gamma{k}"] = shapes[f"beta{k}"] = norm_shape
        prev = shape
    return shapes


# ---- the summary ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """The notes' per-layer table of a net: one row per layer and the totals.

    ``rows`` are dicts with ``name``, ``output_shape`` (C, H, W) or (N,), ``activations`` (values
    per image), ``params`` (weights, biases and normalization parameters), ``weights`` (without
    biases and normalization parameters) and ``mult_adds`` (per image). The first row is the
    input. ``str(summary)`` is the table.

    Examples
    --------
    >>> from xpml.nets.convnet import summarize
    >>> summary = summarize("CONV3-4 POOL2 FC-10", (3, 8, 8))
    >>> print(summary)
    layer    output  activations  params  weights  mult-adds
    --------------------------------------------------------
    INPUT    3x8x8           192       0        0          0
    CONV3-4  4x8x8           256     112      108      6,912
    POOL2    4x4x4            64       0        0          0
    FC-10    10               10     650      640        640
    total                    522     762      748      7,552
    memory: 2,088 bytes per image (forward pass, 4-byte values)
    >>> summary.total_params, summary.total_memory, summary.rows[1]["output_shape"]
    (762, 2088, (4, 8, 8))
    """

    rows: tuple
    bytes_per_value: int = 4

    @property
    def total_params(self) -> int:
        return sum(r["params"] for r in self.rows)

    @property
    def total_weights(self) -> int:
        return sum(r["weights"] for r in self.rows)

    @property
    def total_activations(self) -> int:
        """Values stored per image in the forward pass, the input included (ReLUs work in place)."""
        return sum(r["activations"] for r in self.rows)

    @property
    def total_memory(self) -> int:
        """Bytes of :attr:`total_activations` per image (forward pass only; about twice with the backward)."""
        return self.total_activations * self.bytes_per_value

    @property
    def total_mult_adds(self) -> int:
        return sum(r["mult_adds"] for r in self.rows)

    def __str__(self) -> str:
        head = ("layer", "output", "activations", "params", "weights", "mult-adds")
        body = [(r["name"], "x".join(map(str, r["output_shape"])), f"{r['activations']:,}", f"{r['params']:,}",
                 f"{r['weights']:,}", f"{r['mult_adds']:,}") for r in self.rows]
        body.append(("total", "", f"{self.total_activations:,}", f"{self.total_params:,}", f"{self.total_weights:,}",
                     f"{self.total_mult_adds:,}"))
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(row, widths, strict=True))) for row in [head, *body]]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"memory: {self.total_memory:,} bytes per image (forward pass, "
                     f"{self.bytes_per_value}-byte values)")
        return "\n".join(lines)


def summarize(architecture, input_dim, /, *, bytes_per_value: int = 4) -> Summary:
    """The :class:`Summary` of an architecture string on inputs of ``input_dim`` (C, H, W),
    computed from the sizes alone (nothing is allocated: VGG-16 costs nothing).

    Notes
    -----
    For the notes' VGG-16 (:data:`VGG16` on (3, 224, 224)) this gives 138,357,544 parameters
    (138,344,128 weights without the biases) and 15,237,608 activations per image, the input
    included: the sum of the notes' own per-layer rows. The notes' "TOTAL memory: 24M" disagrees
    with those rows.

    Examples
    --------
    A 3x3 convolution of 3 channels into 4 has 4 * 3 * 3 * 3 = 108 weights and 4 biases:

    >>> from xpml.nets.convnet import summarize
    >>> summary = summarize("CONV3-4 POOL2 FC-10", (3, 8, 8))
    >>> [(row["name"], row["params"]) for row in summary.rows]
    [('INPUT', 0), ('CONV3-4', 112), ('POOL2', 0), ('FC-10', 650)]
    >>> summary.total_activations, summary.total_mult_adds
    (522, 7552)
    """
    layers = parse_architecture(architecture) if isinstance(architecture, str) else tuple(architecture)
    input_dim = _input_dim(input_dim)
    rows = [dict(name="INPUT", output_shape=input_dim, activations=math.prod(input_dim), params=0, weights=0,
                 mult_adds=0)]
    prev = input_dim
    pshapes = _param_shapes(layers, input_dim)
    k = 0
    for layer, shape in zip(layers, _shapes(layers, input_dim), strict=True):
        params = weights = macs = 0
        if layer.kind != "pool":
            k += 1
            weights = math.prod(pshapes[f"W{k}"])
            params = weights + layer.outputs + (2 * layer.outputs if layer.norm else 0)
            per_output = math.prod(prev) if layer.kind == "fc" else prev[0] * math.prod(layer.size)
            macs = math.prod(shape) * per_output
        rows.append(dict(name=layer.token, output_shape=shape, activations=math.prod(shape), params=params,
                         weights=weights, mult_adds=macs))
        prev = shape
    return Summary(tuple(rows), bytes_per_value)


# ---- the net ------------------------------------------------------------------------------------------

_STATS = ("running_mean", "running_var")


@register_model
class ConvNet(Net, CourseFace):
    """A convolutional net of the notes' pattern, given in their notation, with a softmax loss.

    Parameters
    ----------
    architecture : str
        The layers, e.g. ``"CONV3-32 CONV3-32 POOL2 FC-256 FC-10"`` (grammar in
        :mod:`nets.convnet`); the last FC's outputs are the class scores.
    input_dim : (C, H, W)
        The size of one image; inputs come as (N, C, H, W) (or flattened, (N, C*H*W)).
    reg : float, keyword-only
        L2 strength; the loss adds ``0.5 * reg * sum(W**2)`` over every weight (the course's
        convention for its nets).
    weight_scale : float, keyword-only
        Standard deviation of the initial weights for ``init="std"``.
    dtype, seed, init, xp, device : keyword-only
        As :class:`nets.FullyConnectedNet`; ``init="he"`` scales each layer by ``sqrt(2 / fan_in)``
        with ``fan_in = C FH FW`` for a convolution. As there, ``seed`` also fixes the dropout
        masks of direct :meth:`loss` calls (for gradient checks); :class:`nets.Solver` draws
        fresh masks from its generator.

    Attributes
    ----------
    params : dict
        ``W1, b1, ...`` for every CONV and FC layer in order (``W`` of a CONV is (F, C, FH, FW), of
        an FC (D, M)), ``gamma<k>``, ``beta<k>`` for normalized ones.
    state : dict
        The batch-norm running statistics, ``bn<k>/running_mean`` and ``bn<k>/running_var`` (K,)
        of every batch-normalized layer k (numbered as the parameters); ``{}`` without batch norm.
    layers : tuple of :class:`Layer`

    Notes
    -----
    The net implements :class:`nets.model.Model`: :meth:`loss_and_grads` and :meth:`scores` are
    functions of the parameters and state they are given (the running statistics come back as
    a new state), so the Solver traces them into one compiled step on JAX.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import ConvNet
    >>> net = ConvNet("CONV3-4 POOL2 FC-3", (1, 4, 4), seed=0)
    >>> net
    ConvNet('CONV3-4 POOL2 FC-3', input_dim=(1, 4, 4), dtype='float32', backend='numpy')
    >>> {name: p.shape for name, p in net.params.items()}
    {'W1': (4, 1, 3, 3), 'b1': (4,), 'W2': (16, 3), 'b2': (3,)}
    >>> X = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    >>> scores = net.loss(X)
    >>> scores.shape, scores.dtype
    ((2, 3), dtype('float32'))
    >>> loss, grads = net.loss(X, np.array([0, 2]))
    >>> round(float(loss), 4)  # small weights: about log 3
    1.0986
    >>> net.summary().total_params
    91
    """

    def __init__(self, architecture, input_dim=(3, 32, 32), *, reg=0.0, weight_scale=1e-3, dtype=None, seed=None,
                 init: str = "std", xp=None, device=None):
        self._configure(architecture, input_dim, reg, weight_scale, dtype, seed, init, xp, device)
        xp, device = self.backend.xp, self.backend.device
        self.params = {}
        for name, shape in self._pshapes.items():
            if name.startswith("W"):
                fan_in = math.prod(shape[1:]) if len(shape) == 4 else shape[0]
                W = init_weights(self.rng, (fan_in, shape[0] if len(shape) == 4 else shape[1]), scheme=self.init,
                                 std=self.weight_scale, dtype=self.dtype)
                self.params[name] = xp.reshape(xp.matrix_transpose(W), shape) if len(shape) == 4 else W
            elif name.startswith("gamma"):
                self.params[name] = xp.ones(shape, dtype=self.dtype, device=device)
            else:
                self.params[name] = xp.zeros(shape, dtype=self.dtype, device=device)
        self.state = self.init_state()

    def _configure(self, architecture, input_dim, reg, weight_scale, dtype, seed, init, xp, device):
        self.layers = parse_architecture(architecture) if isinstance(architecture, str) else tuple(architecture)
        self.architecture = (" ".join(architecture.split()) if isinstance(architecture, str)
                             else " ".join(layer.text() for layer in self.layers))
        self.image_shape = _input_dim(input_dim)
        self.input_dim = math.prod(self.image_shape)
        self._out_shapes = _shapes(self.layers, self.image_shape)
        self._pshapes = _param_shapes(self.layers, self.image_shape)
        check_size(self._pshapes.values())
        self.num_classes = self._out_shapes[-1][0]
        self.reg = as_float(reg, name="reg", allow_zero=True)
        self.weight_scale = as_float(weight_scale, name="weight_scale")
        if init not in INIT_SCHEMES:
            raise InputError(f"unknown init {init!r}; choose one of: {', '.join(INIT_SCHEMES)}")
        self.init = init
        self.backend = backend.as_backend(xp, device=device)
        self.dtype = backend.float_dtype(self.backend.xp, self.backend.device, dtype_name(dtype))
        self.rng = backend.Generator(seed, xp=self.backend)
        self.seed = None if seed is None else int(seed)

    def _numbered(self):
        """``(k, layer)`` of every CONV and FC layer, k numbering its parameters from 1."""
        return [(k, layer) for k, layer in enumerate((la for la in self.layers if la.kind != "pool"), start=1)]

    def _widths(self):
        return [math.prod(s) for s in self._out_shapes] + [self.input_dim]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.architecture!r}, input_dim={self.image_shape}, "
                f"dtype={self.dtype_name!r}, backend={self.backend.label!r})")

    def summary(self) -> Summary:
        """The per-layer table of this net (see :func:`summarize`), in its dtype's bytes.

        Examples
        --------
        >>> from xpml.nets import ConvNet
        >>> net = ConvNet("CONV3-4 POOL2 FC-3", (1, 4, 4))
        >>> net.summary().total_params, net.summary().total_memory
        (91, 396)
        >>> ConvNet("CONV3-4 POOL2 FC-3", (1, 4, 4), dtype="float64").summary().total_memory
        792
        """
        return summarize(self.layers, self.image_shape, bytes_per_value=8 if self.dtype_name == "float64" else 4)

    # ---- input -----------------------------------------------------------------------------------

    def _own(self, X, name: str):
        X = super()._own(X, name)
        if tuple(X.shape[1:]) != self.image_shape:
            if X.ndim != 2:
                raise InputError(f"{name} must have shape (N, {', '.join(map(str, self.image_shape))}) or "
                                 f"(N, {self.input_dim}), got {tuple(X.shape)}")
            X = self.backend.xp.reshape(X, (X.shape[0], *self.image_shape))
        return X

    def _images(self, X):
        """Rows (N, C*H*W) as images (N, C, H, W): a reshape, so it traces (checked data only)."""
        return X if X.ndim == 4 else self.backend.xp.reshape(X, (X.shape[0], *self.image_shape))

    # ---- forward and backward -------------------------------------------------------------------

    def _forward(self, params, X, *, state, training: bool, rng):
        """Scores (N, K), the caches of every layer, and the new state (the running statistics
        after this batch in training mode; ``state`` itself in test mode)."""
        xp, device = self.backend.xp, self.backend.device
        mode = "train" if training else "test"
        h, caches, new_state, k = self._images(X), [], dict(state), 0
        for layer in self.layers:
            if layer.kind == "pool":
                h, cache = max_pool_forward_fast(h, {"pool_height": layer.size[0], "pool_width": layer.size[1],
                                                     "stride": layer.stride})
                caches.append((cache,))
                continue
            k += 1
            W, b = params[f"W{k}"], params[f"b{k}"]
            if layer.kind == "conv":
                h, c_main = conv_forward_fast(h, W, b, {"stride": layer.stride, "pad": layer.pad,
                                                        "dilation": layer.dilation})
            else:
                h, c_main = affine_forward(h, W, b, xp=xp)
            c_norm = c_relu = c_drop = None
            if layer.norm == "batchnorm":
                # A fresh bn_param per call: the layer stores the new statistics into it, and
                # they are read back from there into the new state; nothing the caller gave changes.
                bn_param = {"mode": mode, **{s: state[f"bn{k}/{s}"] for s in _STATS}}
                if layer.kind == "conv":
                    h, c_norm = spatial_batchnorm_forward(h, params[f"gamma{k}"], params[f"beta{k}"], bn_param)
                else:
                    h, c_norm = batchnorm_forward(h, params[f"gamma{k}"], params[f"beta{k}"], bn_param, xp=xp,
                                                  device=device)
                if training:
                    new_state.update({f"bn{k}/{s}": bn_param[s] for s in _STATS})
            elif layer.norm == "groupnorm":
                h, c_norm = spatial_groupnorm_forward(h, params[f"gamma{k}"], params[f"beta{k}"], layer.groups, {})
            if layer.relu:
                h, c_relu = relu_forward(h, xp=xp)
            if layer.keep != 1.0 and training:
                param = {"mode": "train", "p": layer.keep}
                if rng is not None:
                    param["generator"] = rng
                elif self.seed is not None:
                    param["seed"] = self.seed + k
                h, c_drop = dropout_forward(h, param, xp=xp, device=device)
            caches.append((c_main, c_norm, c_relu, c_drop))
        if h.ndim == 4:  # the convolutional form on the size it was built for: (N, K, 1, 1)
            h = xp.reshape(h, (h.shape[0], h.shape[1]))
        return h, caches, new_state

    # ---- the model contract (nets.model.Model) -----------------------------------------------------

    def init_state(self) -> dict:
        """Zero running statistics of every batch-normalized layer (empty without batch norm)."""
        xp, device = self.backend.xp, self.backend.device
        return {f"bn{k}/{s}": xp.zeros((layer.outputs,), dtype=self.dtype, device=device)
                for k, layer in self._numbered() if layer.norm == "batchnorm" for s in _STATS}

    def scores(self, params, X, /, *, state):
        """Class scores (N, K) in test mode (no dropout, running statistics), unchecked."""
        return self._forward(params, X, state=state, training=False, rng=None)[0]

    def _scores(self, X):
        return self.scores(self.params, X, state=self.state)

    def loss_and_grads(self, params, X, y, /, *, state, rng=None, training=True):
        """``(loss, grads, state)`` for unchecked inputs (see :class:`nets.model.Model`).

        In training mode the dropout masks come from ``rng`` (None: the net's fixed-seed masks,
        as the course's gradient checks need) and batch norm uses the batch statistics, returning
        the updated running statistics. The loss includes ``0.5 * reg * sum(W**2)``. Nothing is
        read back to the host.
        """
        if training and X.shape[0] < 2 and any(layer.norm == "batchnorm" for layer in self.layers):
            raise InputError("batch norm in training mode needs at least 2 examples per batch (the variance of one "
                             f"example is 0); got a batch of {X.shape[0]}: use a larger batch_size")
        xp, device = self.backend.xp, self.backend.device
        scores, caches, new_state = self._forward(params, X, state=state, training=training, rng=rng)
        loss, dout = softmax_loss(scores, y, xp=xp, device=device)
        grads = {}
        k = len(self._numbered())
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if layer.kind == "pool":
                dout = max_pool_backward_fast(dout, caches[i][0])
                continue
            c_main, c_norm, c_relu, c_drop = caches[i]
            if c_drop is not None:
                dout = dropout_backward(dout, c_drop, xp=xp)
            if c_relu is not None:
                dout = relu_backward(dout, c_relu, xp=xp)
            if layer.norm == "groupnorm":
                dout, grads[f"gamma{k}"], grads[f"beta{k}"] = spatial_groupnorm_backward(dout, c_norm)
            elif layer.norm == "batchnorm":
                back = spatial_batchnorm_backward if layer.kind == "conv" else batchnorm_backward
                dout, grads[f"gamma{k}"], grads[f"beta{k}"] = back(dout, c_norm)
            if layer.kind == "conv":
                if dout.ndim == 2:
                    dout = xp.reshape(dout, (*dout.shape, 1, 1))
                dout, grads[f"W{k}"], grads[f"b{k}"] = conv_backward_fast(dout, c_main)
            else:
                dout, grads[f"W{k}"], grads[f"b{k}"] = affine_backward(dout, c_main, need_dx=i > 0, xp=xp)
            k -= 1
        if self.reg:
            for name in self._pshapes:
                if name.startswith("W"):
                    penalty, dW = l2_penalty(params[name], 0.5 * self.reg, xp=xp)
                    loss = loss + penalty
                    grads[name] = iadd(grads[name], dW)
        return loss, grads, new_state

    def loss(self, X, y=None):
        """Scores, or the loss and its gradients, as the course's ``ThreeLayerConvNet.loss``.

        Parameters
        ----------
        X : array (N, C, H, W) or (N, C*H*W)
            Images on the net's backend; cast to the net's dtype.
        y : array (N,) of int, optional
            Labels in [0, K). Without them the net runs in test mode and returns the scores.

        Returns
        -------
        scores : array (N, K)
            When ``y`` is None.
        (loss, grads) : (0-d array, dict)
            Otherwise (training mode: dropout and batch statistics, the new running statistics
            stored in :attr:`state`); ``grads`` has the keys and shapes of :attr:`params`.

        Notes
        -----
        ``L = -(1/N) sum_i log softmax(s_i)_{y_i} + 0.5 reg sum_l |W_l|^2``.
        """
        if y is None:
            return self._scores(self._check_X(X))
        X, y = self._check_labelled(X, y)
        return CourseFace.loss(self, X, y)

    # ---- fully connected layers as convolutions --------------------------------------------------

    def convolutional(self) -> ConvNet:
        """The equivalent net whose FC layers are convolutions (test mode; the same parameters).

        The first FC layer, which sees a C x H x W volume, becomes a CONV with H x W filters and no
        padding; the FC layers after it become 1 x 1 convolutions; the last one keeps no ReLU.
        Applied by :meth:`score_map` to an image larger than :attr:`image_shape`, the result slides
        the original net over every crop it would see, in one pass. Each entry equals the original
        net on its crop exactly when the convolutions have no zero padding (``/p0``); with padding,
        a crop inside the image sees its real neighbours where the net alone would see zeros.

        Examples
        --------
        The FC-3 on the 4 x 2 x 2 volume becomes a 2 x 2 convolution; on an 8 x 8 image the net
        gives a 3 x 3 map of class scores:

        >>> import numpy as np
        >>> from xpml.nets import ConvNet
        >>> net = ConvNet("CONV3-4 POOL2 FC-3", (1, 4, 4), seed=0, dtype="float64")
        >>> conv = net.convolutional()
        >>> conv.architecture
        'CONV3-4/s1/p1/d1 POOL2/s2 CONV2-3/s1/p0/d1/linear'
        >>> conv.params["W2"].shape
        (3, 4, 2, 2)
        >>> X = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
        >>> bool(np.allclose(conv.loss(X), net.loss(X)))
        True
        >>> conv.score_map(np.zeros((1, 1, 8, 8))).shape
        (1, 3, 3, 3)
        """
        xp = self.backend.xp
        layers, params, prev = [], {}, self.image_shape
        k = 0
        for layer, shape in zip(self.layers, self._out_shapes, strict=True):
            if layer.kind == "fc":
                k += 1
                fh, fw = (prev[1], prev[2]) if len(prev) == 3 else (1, 1)
                C = prev[0]
                f = f"{fh}" if fh == fw else f"{fh}x{fw}"
                token = f"CONV{f}-{layer.outputs}/p0" + ("" if layer.relu else "/linear")
                layers.append(dataclasses.replace(layer, kind="conv", token=token, size=(fh, fw), stride=1, pad=0,
                                                  dilation=1, keep=1.0))
                W = self.params[f"W{k}"]
                params[f"W{k}"] = xp.reshape(xp.matrix_transpose(W), (layer.outputs, C, fh, fw))
                prev = (layer.outputs, 1, 1)
            else:
                if layer.kind == "conv":
                    k += 1
                    params[f"W{k}"] = self.params[f"W{k}"]
                layers.append(layer)
                prev = shape
            if layer.kind != "pool":
                params[f"b{k}"] = self.params[f"b{k}"]
                for name in (f"gamma{k}", f"beta{k}"):
                    if name in self.params:
                        params[name] = self.params[name]
        net = _FullyConvolutional.__new__(_FullyConvolutional)
        net._configure(tuple(layers), self.image_shape, self.reg, self.weight_scale, self.dtype_name, self.seed,
                       self.init, self.backend, None)
        net.params = params
        net.state = dict(self.state)
        net.num_classes = self.num_classes
        return net

    # ---- checkpoints -------------------------------------------------------------------------------

    def _checkpoint_config(self) -> dict:
        return {"architecture": " ".join(layer.text() for layer in self.layers),
                "input_dim": list(self.image_shape), "reg": self.reg, "weight_scale": self.weight_scale,
                "dtype": self.dtype_name, "seed": self.seed, "init": self.init}

    def _checkpoint_state(self) -> dict:
        return self.state

    @classmethod
    def _checkpoint_shapes(cls, config: dict) -> dict:
        layers = parse_architecture(config["architecture"])
        image = _input_dim(config["input_dim"])
        shapes = {f"param/{k}": v for k, v in _param_shapes(layers, image).items()}
        check_size(shapes.values())
        k = 0
        for layer in layers:
            if layer.kind != "pool":
                k += 1
                if layer.norm == "batchnorm":
                    for s in _STATS:
                        shapes[f"state/bn{k}/{s}"] = (layer.outputs,)
        return shapes

    @classmethod
    def _from_checkpoint(cls, config: dict, arrays: dict, *, xp=None, device=None, dtype=None):
        net = cls.__new__(cls)
        net._configure(config["architecture"], config["input_dim"], config["reg"], config["weight_scale"],
                       dtype if dtype is not None else config["dtype"], config["seed"], config["init"], xp, device)
        net._set_arrays(arrays)
        return net

    def _set_arrays(self, arrays: dict) -> None:
        put = self.backend.asarray
        self.params = {k: put(arrays[f"param/{k}"], dtype=self.dtype) for k in self._pshapes}
        self.state = {k: put(arrays[f"state/{k}"], dtype=self.dtype) for k in self.init_state()}

    def load_params(self, path, /) -> None:
        """Put the parameters and running statistics of the checkpoint at ``path`` into this net.

        The checkpoint may come from any backend and dtype, and from a net of another class with
        the same layers (a :class:`ThreeLayerConvNet` into the equivalent :class:`ConvNet`);
        its arrays are placed on this net's backend in its dtype.

        Raises
        ------
        ValueError
            When the checkpoint's net has other layers: the message names the first layer of this
            net whose parameters the checkpoint lacks or holds with another shape, with both shapes.
        """
        from .checkpoint import load_model

        other, _ = load_model(path)
        theirs = {f"param/{k}": v for k, v in other.params.items()}
        theirs.update({f"state/{k}": v for k, v in getattr(other, "state", {}).items()})
        expected = {f"param/{k}": v for k, v in self._pshapes.items()}
        expected.update({f"state/{k}": tuple(v.shape) for k, v in self.init_state().items()})
        layer_of = {}
        for (k, layer), i in zip(self._numbered(), [j for j, la in enumerate(self.layers, 1) if la.kind != "pool"],
                                 strict=True):
            for name in (f"W{k}", f"b{k}", f"gamma{k}", f"beta{k}", *(f"bn{k}/{s}" for s in _STATS)):
                layer_of[name] = f"layer {i} ({layer.token})"
        extra = sorted(set(k.partition("/")[2] for k in theirs) - set(k.partition("/")[2] for k in expected))
        for key, shape in expected.items():
            name = key.partition("/")[2]
            got = tuple(theirs[key].shape) if key in theirs else None
            if got != tuple(shape):
                held = "lacks it" if got is None else f"holds {got}"
                raise InputError(f"{path}: {layer_of[name]} of this {type(self).__name__} needs {name} of shape "
                                 f"{tuple(shape)}; the checkpoint (a {type(other).__name__}) {held}: it was saved "
                                 f"from a net of another architecture ({_describe(other)})")
        if extra:
            raise InputError(f"{path}: the checkpoint (a {type(other).__name__}, {_describe(other)}) has "
                             f"{', '.join(extra)}, which this net lacks: it was saved from a net of another "
                             f"architecture than {self.architecture!r}")
        self._set_arrays({k: backend.to_numpy(v) for k, v in theirs.items()})


def _describe(model) -> str:
    arch = getattr(model, "architecture", None)
    return f"architecture {arch!r}" if arch else repr(model)


class _FullyConvolutional(ConvNet):
    """What :meth:`ConvNet.convolutional` returns: a ConvNet that also scores larger images."""

    def score_map(self, X, /):
        """Class scores (N, K, H', W') of every crop of :attr:`image_shape` the convolutions see in X.

        X is (N, C, H, W) with H, W at least the net's input size; entry (i, j) of the map equals the
        original net's scores on the crop whose top left corner is ``(i S, j S)``, S the product of
        the strides. Raises ValueError (naming the layer) where a layer's windows do not tile.
        """
        backend.check_on_backend(X, self.backend, name="X", owner="this net", target="net.backend")
        if X.ndim != 4 or X.shape[1] != self.image_shape[0]:
            raise InputError(f"X must have shape (N, {self.image_shape[0]}, H, W), got {tuple(X.shape)}")
        check_data(X, name="X", ndim=4)
        _shapes(self.layers, tuple(X.shape[1:]))  # sizes checked before any arithmetic
        xp = self.backend.xp
        X = X if X.dtype == self.dtype else xp.astype(X, self.dtype)
        h = X
        k = 0
        for layer in self.layers:
            if layer.kind == "pool":
                h, _ = max_pool_forward_fast(h, {"pool_height": layer.size[0], "pool_width": layer.size[1],
                                                 "stride": layer.stride})
                continue
            k += 1
            h, _ = conv_forward_fast(h, self.params[f"W{k}"], self.params[f"b{k}"],
                                     {"stride": layer.stride, "pad": layer.pad, "dilation": layer.dilation})
            if layer.norm == "batchnorm":
                h, _ = spatial_batchnorm_forward(h, self.params[f"gamma{k}"], self.params[f"beta{k}"],
                                                 {"mode": "test", **{s: self.state[f"bn{k}/{s}"] for s in _STATS}})
            elif layer.norm == "groupnorm":
                h, _ = spatial_groupnorm_forward(h, self.params[f"gamma{k}"], self.params[f"beta{k}"],
                                                 layer.groups, {})
            if layer.relu:
                h, _ = relu_forward(h)
        return h


@register_model
class ThreeLayerConvNet(ConvNet):
    """Assignment 2's three-layer net: ``conv - relu - 2x2 max pool - affine - relu - affine - softmax``.

    Parameters
    ----------
    input_dim : (C, H, W)
    num_filters : int
        Filters of the convolution (stride 1, padding ``(filter_size - 1) // 2``, which keeps the size).
    filter_size : int
    hidden_dim : int
        Units of the hidden affine layer.
    num_classes : int
    weight_scale : float
        Standard deviation of the initial weights (biases start at 0).
    reg : float
        L2 strength (``0.5 * reg * sum(W**2)``).
    dtype
        float32 (default, as the course's ``np.float32``) or float64 for gradient checks.
    seed, xp, device : keyword-only
        As :class:`ConvNet`.

    Attributes
    ----------
    params : dict
        ``W1`` (F, C, filter_size, filter_size), ``b1`` (F,), ``W2`` (F H W / 4, hidden_dim), ``b2``,
        ``W3`` (hidden_dim, num_classes), ``b3``: the course's names.

    Examples
    --------
    >>> import numpy as np
    >>> from xpml.nets import ThreeLayerConvNet
    >>> net = ThreeLayerConvNet((1, 4, 4), num_filters=2, filter_size=3, hidden_dim=5, num_classes=3, seed=0)
    >>> net
    ThreeLayerConvNet('CONV3-2/p1 POOL2 FC-5 FC-3', input_dim=(1, 4, 4), dtype='float32', backend='numpy')
    >>> {name: p.shape for name, p in net.params.items()}
    {'W1': (2, 1, 3, 3), 'b1': (2,), 'W2': (8, 5), 'b2': (5,), 'W3': (5, 3), 'b3': (3,)}
    >>> net.loss(np.zeros((2, 1, 4, 4), dtype=np.float32)).shape
    (2, 3)
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=None, *, seed=None, xp=None, device=None):
        self.hyper = {"num_filters": as_int(num_filters, name="num_filters"),
                      "filter_size": as_int(filter_size, name="filter_size"),
                      "hidden_dim": as_int(hidden_dim, name="hidden_dim"),
                      "num_classes": as_int(num_classes, name="num_classes")}
        super().__init__(self._architecture(**self.hyper), input_dim, reg=reg, weight_scale=weight_scale,
                         dtype=dtype, seed=seed, xp=xp, device=device)

    @staticmethod
    def _architecture(num_filters, filter_size, hidden_dim, num_classes) -> str:
        return (f"CONV{filter_size}-{num_filters}/p{(filter_size - 1) // 2} POOL2 FC-{hidden_dim} "
                f"FC-{num_classes}")

    def _checkpoint_config(self) -> dict:
        return {**self.hyper, "input_dim": list(self.image_shape), "reg": self.reg, "weight_scale": self.weight_scale,
                "dtype": self.dtype_name, "seed": self.seed}

    @classmethod
    def _checkpoint_shapes(cls, config: dict) -> dict:
        keys = ("num_filters", "filter_size", "hidden_dim", "num_classes")
        layers = parse_architecture(cls._architecture(**{k: as_int(config[k], name=k) for k in keys}))
        return {f"param/{k}": v for k, v in _param_shapes(layers, _input_dim(config["input_dim"])).items()}

    @classmethod
    def _from_checkpoint(cls, config: dict, arrays: dict, *, xp=None, device=None, dtype=None):
        net = cls.__new__(cls)
        keys = ("num_filters", "filter_size", "hidden_dim", "num_classes")
        net.hyper = {k: as_int(config[k], name=k) for k in keys}
        net._configure(cls._architecture(**net.hyper), config["input_dim"], config["reg"], config["weight_scale"],
                       dtype if dtype is not None else config["dtype"], config["seed"], "std", xp, device)
        net._set_arrays(arrays)
        return net
