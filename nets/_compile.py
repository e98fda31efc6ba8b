"""The Solver's training step as one compiled, pure function, where the backend has a compiler (JAX).

The model contract (:class:`nets.model.Model`) and the update rules (:mod:`nets.rules`) are
already pure: ``loss_and_grads(params, X, y, state=, rng=)`` and ``update(grads, state, params,
lr)`` take everything they read and return everything they change. A step is therefore
``f(params, model state, optimizer state, learning rate, counter, X, y) -> (params, model state,
optimizer state, counter, loss)``, traced once through the very code the eager step runs and
compiled by the backend's compiler (:func:`backend._compile.compiler`: ``jax.jit``).

The cache key: the shapes and dtypes of every array, and the model's attributes that are Python
numbers, strings or tuples of them (``reg``, the dropout probability), whose values a trace holds.
The learning rate and the step count are inputs (0-d arrays), so schedules do not recompile.
Settings kept in the model's dicts (a ``bn_param``'s ``eps``) are read when the step is traced:
change them and make a new Solver.
"""

from __future__ import annotations

from .. import backend
from ..backend._compile import advance_counter, compiler, counter_words, traced_generator
from .losses import DistillationTargets
from .model import CourseModel
from .rules import CourseRule

__all__ = ["CompiledStep", "compiled_step"]


def _signature(tree) -> tuple:
    """Shapes and dtypes of the arrays of a nested dict / tuple, with its structure."""
    if isinstance(tree, dict):  # sorted: a compiled function returns its dicts with sorted keys
        return tuple((k, _signature(tree[k])) for k in sorted(tree))
    if isinstance(tree, (tuple, list)):
        return tuple(_signature(v) for v in tree)
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return (tuple(tree.shape), str(tree.dtype))
    return (type(tree).__name__, tree)


def _hyperparameters(model) -> tuple:
    """The model's attributes that are Python scalars or tuples of them: a trace holds their values."""
    plain = (bool, int, float, str, type(None))
    return tuple(sorted((k, v) for k, v in vars(model).items()
                        if isinstance(v, plain) or isinstance(v, tuple) and all(isinstance(x, plain) for x in v)))


def compiled_step(solver, *, enabled: bool = True):
    """A :class:`CompiledStep` for ``solver``, or None where the step runs eagerly: when not
    ``enabled``, when the model's backend has no compiler (every backend but JAX), for a course
    model (its ``loss`` may read values back) and for a course rule (it may read its config with
    ``float``)."""
    impl = solver._impl
    if not enabled or isinstance(impl, CourseModel) or isinstance(solver.optimizer.rule, CourseRule):
        return None
    compile_fn = compiler(impl.backend)
    return None if compile_fn is None else CompiledStep(solver, compile_fn)


class CompiledStep:
    """One compiled training step of ``solver``; call it with ``(X, y, learning_rate)``.

    The model's parameters and state, the optimizer state and the generator's counter are left
    where the eager step leaves them; the loss comes back as a 0-d device array. ``traces`` counts
    the traces made (each is one compilation).
    """

    def __init__(self, solver, compile_fn):
        self.solver, self._compile = solver, compile_fn
        self._cache = {}
        self.traces = 0
        self._lr = (None, None)       # (host value, 0-d device array) of the last learning rate
        self._counter = (None, None)  # (host counter, its words on the device) after the last step

    def _learning_rate(self, value, like):
        if self._lr[0] != value or self._lr[1].dtype != like.dtype:
            xp, device = backend.namespace_and_device(like)
            self._lr = (value, xp.asarray(value, dtype=like.dtype, device=device))
        return self._lr[1]

    def _counter_words(self):
        rng = self.solver.rng
        if self._counter[0] != rng.counter:  # something else drew since (minibatch indices, augmentation)
            self._counter = (rng.counter, counter_words(rng))
        return self._counter[1]

    def __call__(self, X, y, learning_rate):
        solver, impl = self.solver, self.solver._impl
        params = impl.params
        opt_state = solver.optimizer_state
        if isinstance(opt_state["count"], int):  # an input of the step from now on, kept on the device
            xp, device = backend.namespace_and_device(X)
            opt_state = {**opt_state, "count": xp.asarray(opt_state["count"], dtype=xp.int32, device=device)}
        like = next(iter(params.values()))
        lr = self._learning_rate(learning_rate, like)
        # Distillation targets go in as their arrays; their settings are part of the trace.
        targets = None
        if isinstance(y, DistillationTargets):
            targets, y = (y.temperature, y.alpha), (y.labels, y.teacher_probs)
        key = (_signature(params), _signature(impl.state), _signature((X, y)), _signature(opt_state),
               _hyperparameters(impl), targets)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = self._build(targets)
        fn, meta = entry
        new_params, new_state, solver.optimizer_state, counter, loss = fn(
            dict(params), impl.state, opt_state, lr, self._counter_words(), X, y)
        params.update(new_params)
        impl.state = new_state
        solver.rng.counter += meta["blocks"]
        self._counter = (solver.rng.counter, counter)
        return loss

    def _build(self, targets=None):
        solver, meta = self.solver, {}
        impl, optimizer = solver._impl, solver.optimizer

        def step(params, state, opt_state, lr, counter, X, y):
            self.traces += 1
            if targets is not None:
                y = DistillationTargets(*y, temperature=targets[0], alpha=targets[1], check=False)
            rng = traced_generator(solver.rng, counter)
            loss, grads, state = impl.loss_and_grads(params, X, y, state=state, rng=rng, training=True)
            penalty = optimizer.penalty(params)
            if penalty is not None:
                loss = loss + penalty
            params, opt_state = optimizer.update(grads, opt_state, params, lr)
            meta["blocks"] = rng.counter
            return params, state, opt_state, advance_counter(solver.rng, counter, rng.counter), loss

        return self._compile(step), meta
