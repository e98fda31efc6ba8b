"""The Solver's training step as one compiled, pure function, where the backend has a compiler (JAX).

A step of :class:`nets.Solver` reads and writes Python-side state: the model's ``params`` dict,
its batch-norm running statistics (``bn_params``), the optimizer configs (moments, Adam's step
count ``t``) and the generator's counter (dropout masks). :class:`CompiledStep` makes all of it
explicit: the step becomes ``f(params, state, optimizer arrays, learning rate, counter, X, y) ->
(params, state, optimizer arrays, counter, loss)``, traced once through the model's own loss and
analytic backward (``_solver_loss``) and the Solver's own update (:meth:`Solver._update`), and
compiled by the backend's compiler (:func:`backend._compile.compiler`: ``jax.jit``). There is one
copy of the math: tracing runs exactly the code the eager step runs.

What changes the trace is the key of the cache: the shapes and dtypes of every array, the
optimizer's constant hyperparameters and the model's (its attributes that are Python numbers,
strings or tuples of them, such as ``reg`` or the dropout probability). The update rule, L1 and
max-norm are fixed for a Solver, and so is the cache, which is the Solver's. Settings kept in
the model's dicts (a ``bn_param``'s ``eps`` or ``momentum``) are read when the step is traced:
change them and make a new Solver. The learning rate is an input
(a 0-d array), so schedules and ``lr_decay`` do not recompile; so are the step counts.
"""

from __future__ import annotations

import numbers

from .. import backend
from ..backend._compile import advance_counter, compiler, counter_words, traced_generator
from .optim import UPDATE_RULES

__all__ = ["CompiledStep", "compiled_step"]

# Keys of an optimizer config that are not traced state: the bookkeeping of the in-place fast
# path (meaningless for arrays that cannot be written) and the learning rate, an input of its own.
_NOT_STATE = ("_owned_state", "learning_rate")


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, numbers.Number)


def _signature(arrays: dict) -> tuple:
    return tuple((k, tuple(v.shape), str(v.dtype)) for k, v in arrays.items())


def _hyperparameters(model) -> tuple:
    """The model's attributes that are Python scalars or tuples of them (``reg``, the dropout
    probability, the layer sizes, ...): a trace holds their values, so they are part of the key."""
    plain = (bool, int, float, str, type(None))
    return tuple(sorted((k, v) for k, v in vars(model).items()
                        if isinstance(v, plain) or isinstance(v, tuple) and all(isinstance(x, plain) for x in v)))


def compiled_step(solver, *, enabled: bool = True):
    """A :class:`CompiledStep` for ``solver``, or None where the step runs eagerly.

    The step runs eagerly when ``enabled`` is False, when the model's backend has no compiler
    (every backend but JAX), when the model has no ``_solver_loss`` (a model written for the
    course may read values back or branch on them in Python), when it keeps state it cannot
    restore (a non-empty ``_checkpoint_state`` without ``_restore_state``), and when the update rule is not
    one of :mod:`nets.optim`'s (a custom rule may read its hyperparameters with ``float``).
    """
    model = solver.model
    bk = getattr(model, "backend", None) or backend.backend_of(solver.X_train)
    compile_fn = compiler(bk) if enabled else None
    if compile_fn is None or getattr(model, "_solver_loss", None) is None:
        return None
    state = getattr(model, "_checkpoint_state", None)
    if state is not None and state() and not hasattr(model, "_restore_state"):
        return None
    if not any(solver.update_rule is rule for rule in UPDATE_RULES.values()):
        return None
    try:
        hash(tuple(solver.optim_config.items()))
    except TypeError:  # a hyperparameter that cannot be part of the cache key
        return None
    return CompiledStep(solver, compile_fn)


class CompiledStep:
    """One training step of ``solver`` (loss, gradients, update of every parameter), compiled.

    Call it with a minibatch ``(X, y)``: the model's parameters and running statistics, the
    optimizer configs and the generator's counter are left where the eager step leaves them, and
    the loss comes back as a 0-d device array. ``traces`` counts the traces made (each is one
    compilation).
    """

    def __init__(self, solver, compile_fn):
        self.solver, self._compile = solver, compile_fn
        self._cache = {}
        self.traces = 0
        self._lr = (None, None)       # (host value, 0-d device array) of the last learning rate
        self._counter = (None, None)  # (host counter, its words on the device) after the last step

    # ---- inputs kept on the device ------------------------------------------------------------

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

    def _split_configs(self, params):
        """``(arrays, static, lr)`` of the optimizer configs: the state arrays (step counts become
        0-d int32 arrays, once), the constant hyperparameters (part of the cache key), and each
        config's learning rate as a 0-d array of its parameter's dtype (or None)."""
        arrays, static, lr = {}, {}, {}
        for k, config in self.solver.optim_configs.items():
            for key, value in list(config.items()):
                if isinstance(value, numbers.Integral) and not isinstance(value, bool) and key not in _NOT_STATE:
                    xp, device = backend.namespace_and_device(params[k])
                    config[key] = xp.asarray(int(value), dtype=xp.int32, device=device)
            arrays[k] = {key: v for key, v in config.items() if _is_array(v) and key not in _NOT_STATE}
            static[k] = tuple(sorted((key, v) for key, v in config.items()
                                     if key not in arrays[k] and key not in _NOT_STATE))
            rate = config.get("learning_rate")
            lr[k] = None if rate is None else self._learning_rate(rate, params[k])
        return arrays, static, lr

    # ---- the step -----------------------------------------------------------------------------

    def __call__(self, X, y):
        solver = self.solver
        model = solver.model
        params = model.params
        state = self._state()
        arrays, static, lr = self._split_configs(params)
        key = (_signature(params), _signature(state), _signature({"X": X, "y": y}),
               tuple((k, _signature(a)) for k, a in arrays.items()), tuple(static.items()),
               tuple(k for k, v in lr.items() if v is None), _hyperparameters(model))
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = self._build(static)
        fn, meta = entry
        new_params, new_state, new_arrays, counter, loss = fn(params, state, arrays, lr, self._counter_words(), X, y)
        params.update(new_params)
        if new_state:
            model._restore_state(new_state)
        for k, config in solver.optim_configs.items():
            config.pop("_owned_state", None)
            config.update(new_arrays[k])
        solver.rng.counter += meta["blocks"]
        self._counter = (solver.rng.counter, counter)
        return loss

    def _state(self) -> dict:
        state = getattr(self.solver.model, "_checkpoint_state", None)
        return state() if state is not None else {}

    def _build(self, static):
        solver, meta = self.solver, {}
        model = solver.model

        def step(params, state, arrays, lr, counter, X, y):
            # Runs once per trace: the traced values go into the model and the configs, the eager
            # code runs on them, and everything the step changed comes out as outputs.
            self.traces += 1
            live_params, live_state = dict(model.params), self._state()
            configs = {k: {**dict(static[k]), **arrays[k]} for k in arrays}
            for k, rate in lr.items():
                if rate is not None:
                    configs[k]["learning_rate"] = rate
            try:
                model.params.update(params)
                if state:
                    model._restore_state(state)
                rng = traced_generator(solver.rng, counter)
                loss, grads = model._solver_loss(X, y, rng)
                loss = solver._update(model.params, loss, grads, configs)
                out_params, out_state = dict(model.params), self._state()
            finally:
                model.params.update(live_params)
                if live_state:
                    model._restore_state(live_state)
            meta["blocks"] = rng.counter
            # The state that came in goes out (a step count may come back as a NumPy scalar
            # where no compiler runs), with any state array the rule created.
            out_arrays = {k: {key: v for key, v in c.items()
                              if key not in _NOT_STATE and (key in arrays[k] or _is_array(v))}
                          for k, c in configs.items()}
            return out_params, out_state, out_arrays, advance_counter(solver.rng, counter, rng.counter), loss

        return self._compile(step), meta
