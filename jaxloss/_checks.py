"""Argument validation shared by every module, and checkify support.

Everything here runs at trace time on static shapes and dtypes, so a bad call fails with a
``ValueError``/``TypeError`` that names the argument, what was received and what was expected,
before XLA sees anything. Value errors that depend on array contents (an out-of-range label)
cannot be raised at trace time; they give NaN, and :func:`checked` turns them into exceptions.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
Axis = int | tuple[int, ...]
F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["checked"]


def float_array(x: ArrayLike, name: str) -> Array:
    """``x`` as a JAX array of a floating dtype; raises ``TypeError`` naming ``name`` otherwise."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating-point array; got dtype {x.dtype}.")
    return x


def integer_array(x: ArrayLike, name: str, *, hint: str = "") -> Array:
    """``x`` as a JAX array of an integer dtype; raises ``TypeError`` naming ``name`` otherwise."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array; got dtype {x.dtype}.{hint}")
    return x


def compute_dtype(dtype: Any) -> Any:
    """The dtype a loss is accumulated in: float32 for 16-bit floats, else the input's own."""
    return jnp.promote_types(dtype, jnp.float32)


def upcast(x: Array) -> Array:
    """``x`` in its :func:`compute_dtype` (bf16/f16 → f32; f32/f64 unchanged)."""
    return x.astype(compute_dtype(x.dtype))


def boolean_mask(where: ArrayLike, name: str = "where") -> Array:
    """A ``where`` mask as booleans: **boolean, or integer 0/1** (the one rule of jaxloss).

    Integers are read as ``where != 0`` (as ``jnp.where`` and optax read them), and under
    :func:`checked` a value other than 0 or 1 raises. A floating-point mask is refused with a
    ``TypeError``: a float array in ``where`` is most likely weights, which go in ``weights=``.
    """
    where = jnp.asarray(where)
    if where.dtype == jnp.bool_:
        return where
    if not jnp.issubdtype(where.dtype, jnp.integer):
        raise TypeError(
            f"{name} must be a boolean mask (or integer 0/1); got dtype {where.dtype}. For "
            "per-element weights use weights=; for a float mask pass mask > 0."
        )
    value_check(
        jnp.all((where == 0) | (where == 1)),
        f"{name} of integer dtype must hold only 0 and 1 (it is a mask); got another value.",
    )
    return where != 0


def canonical_axes(
    axis: Axis, ndim: int, name: str = "axis", *, ordered: bool = False
) -> tuple[int, ...]:
    """Normalise an int or tuple of ints to non-negative axes of an ``ndim`` array.

    Sorted, unless ``ordered``: class axes keep the order given, so that flattening them (with
    :func:`move_axes_last`) numbers the classes as optax does (``axis=(3, 2)`` is not
    ``axis=(2, 3)`` for integer labels or class weights).
    """
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    if not axes:
        raise ValueError(f"{name} must name at least one axis; got {axis!r}.")
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer):
            raise TypeError(f"{name} must be an int or a tuple of ints; got {axis!r}.")
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}={axis!r} is out of range for an array of rank {ndim}.")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={axis!r} repeats an axis.")
    return tuple(out) if ordered else tuple(sorted(out))


def canonical_axis(axis: Any, ndim: int, name: str = "axis", what: str = "") -> int:
    """One axis in ``[0, ndim)``: a ``TypeError`` for anything but an int (a tuple included)."""
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise TypeError(f"{name} must be a single int{what}; got {axis!r}.")
    (a,) = canonical_axes(int(axis), ndim, name)
    return a


def move_axes_last(x: Array, axes: tuple[int, ...]) -> Array:
    """Move ``axes`` to the end (in order) and flatten them into one trailing axis."""
    if axes == (x.ndim - 1,):
        return x
    rest = tuple(a for a in range(x.ndim) if a not in axes)
    x = jnp.transpose(x, rest + axes)
    # The flattened size is spelled out: ``-1`` cannot be resolved when another axis is 0.
    return x.reshape((*x.shape[: len(rest)], math.prod(x.shape[len(rest) :])))


def broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (numpy rules, target unchanged)."""
    shape, target = tuple(shape), tuple(target)
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1], strict=False))


def check_broadcast(x: Array, name: str, target: Sequence[int], what: str) -> None:
    """Raise ``ValueError`` unless ``x.shape`` broadcasts to ``target`` without changing it."""
    if not broadcasts_to(x.shape, target):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}, which does not broadcast to the "
            f"{what} shape {tuple(target)}."
        )


def check_same_shape(a: Array, a_name: str, b: Array, b_name: str) -> None:
    """Raise ``ValueError`` unless two arrays have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} has shape {tuple(a.shape)} but {b_name} has shape {tuple(b.shape)}; "
            "they must be equal."
        )


def check_labels_shape(
    labels: Array, expected: Sequence[int], of: str = "logits without its class axis"
) -> None:
    """Integer labels must have the expected shape (``of`` says whose shape that is)."""
    if tuple(labels.shape) != tuple(expected):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)}; expected {tuple(expected)}, the shape of "
            f"{of}."
        )


def integer_labels(
    labels: ArrayLike,
    shape: Sequence[int],
    num_classes: int,
    ignore_index: int | None,
    *,
    of: str = "logits without its class axis",
    hint: str = "",
) -> tuple[Array, Array, Array | None]:
    """Validate integer class labels of shape ``shape``.

    Returns ``(safe_labels, in_range, include)``: labels with out-of-range values replaced by
    0 (safe to gather with), where they lie in ``[0, num_classes)``, and the ``ignore_index``
    mask (``None`` without one).
    """
    labels = integer_array(labels, "labels", hint=hint)
    check_labels_shape(labels, shape, of)
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, int)
    ):
        raise TypeError(f"ignore_index must be a Python int or None; got {ignore_index!r}.")
    in_range = (labels >= 0) & (labels < num_classes)
    include = None if ignore_index is None else labels != ignore_index
    remember_labels(in_range, labels)
    return jnp.where(in_range, labels, 0), in_range, include


def labels_ok(
    in_range: Array, mask: Array | None, num_classes: int, ignore_index: int | None
) -> Array:
    """Where labels are fine: in range, or excluded anyway. Records the :func:`checked` check."""
    ok = in_range if mask is None else in_range | ~mask
    expected = f"labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}"
    labels = _remembered_labels(in_range)
    if labels is None:
        value_check(ok, f"{expected}; got an out-of-range label.")
        return ok
    labels = jnp.broadcast_to(labels, ok.shape)
    bad = ~ok
    # PyTorch's ignore label, without ignore_index: say so before the general message.
    value_check(
        ~jnp.any(bad & (labels == -100)),
        f"{expected}; got -100 (PyTorch's ignore label): did you mean ignore_index=-100?",
    )
    if bad.size == 0:  # nothing to quote (and argmax has no empty form)
        return ok
    first_bad = jnp.ravel(labels)[jnp.argmax(jnp.ravel(bad))]
    value_check(ok, f"{expected}; got an out-of-range label, {{label}}.", label=first_bad)
    return ok


def nan_if_out_of_range(
    per: Array, in_range: Array, mask: Array | None, num_classes: int, ignore_index: int | None
) -> Array:
    """Out-of-range labels that are not excluded give NaN (and raise under :func:`checked`)."""
    return jnp.where(labels_ok(in_range, mask, num_classes, ignore_index), per, jnp.nan)


def class_weight_vector(class_weights: ArrayLike, num_classes: int, dtype: Any) -> Array:
    """Validate a ``[num_classes]`` class-weight vector and cast it to ``dtype``."""
    w = float_array(
        jnp.asarray(class_weights, dtype=jnp.result_type(class_weights, float)), "class_weights"
    )
    if w.shape != (num_classes,):
        raise ValueError(
            f"class_weights has shape {tuple(w.shape)}; expected ({num_classes},), one weight per "
            "class."
        )
    return w.astype(dtype)


# ---------------------------------------------------------------------------------------------
# Label picks and class counts without gathers or scatters.
#
# A gather ``x[..., label]`` or a scatter ``counts.at[label].add(1)`` along a class axis does not
# partition when that axis (or the batch) is sharded: under explicit-axes meshes JAX raises
# ``ShardingTypeError``, under auto sharding XLA may move the operand between devices. A compare
# with an iota inside a reduction is elementwise work that every partitioner splits like its
# operand, and GPU/TPU compilers fuse it into the reduction. Every label pick and class count in
# jaxloss goes through these helpers.


def explicit_spec(a: Array) -> tuple[Any, ...]:
    """The mesh axes each dimension of ``a`` is sharded over *in its type* (explicit axes).

    One entry per dimension: ``None`` (unsharded, or sharded only by auto axes / not at all),
    or a mesh axis name or tuple of names. Under plain ``jit`` with auto sharding, inside
    ``shard_map`` and on one device, every entry is ``None``.
    """
    spec = getattr(getattr(jax.typeof(a), "sharding", None), "spec", None)
    spec = tuple(spec) if spec is not None else ()
    return (spec + (None,) * a.ndim)[: a.ndim]


def reshard_like(x: Array, spec: tuple[Any, ...]) -> Array:
    """``x`` with the explicit sharding ``spec`` (one entry per dimension); a no-op when its
    type already says so (in particular always outside explicit-axes meshes)."""
    if explicit_spec(x) == tuple(spec):
        return x
    return jax.sharding.reshard(x, jax.sharding.PartitionSpec(*spec))


def is_label(labels: Array, num_classes: int) -> Array:
    """``[..., C]`` boolean one-hot of integer ``labels`` ``[...]``: ``iota_c == label``.

    Labels outside ``[0, C)`` match no class (an all-False row). The iota has the labels'
    integer type, widened to 32 bits for narrower ones (a ``uint8`` iota would wrap past 255).
    """
    dtype = labels.dtype if jnp.dtype(labels.dtype).itemsize >= 4 else jnp.dtype(jnp.int32)
    labels = labels.astype(dtype)
    iota = jax.lax.broadcasted_iota(dtype, (*labels.shape, num_classes), labels.ndim)
    return iota == labels[..., None]


def pick_label(x: Array, labels: Array) -> Array:
    """``x[..., label]`` along the last axis: ``Σ_c [c = label] x_c``, sharding-safe.

    ``x`` is ``[..., C]`` with ``x.shape[:-1] == labels.shape``, or ``[C]`` (a table such as
    class weights, picked for every label); ``labels`` are integers in ``[0, C)`` (callers pass
    validated labels; an out-of-range one gives 0 or NaN depending on the path). The value is
    exactly ``x[..., label]``: the sum has one nonzero term, and NaN or inf at other classes
    reaches neither it nor its gradient (``[c = label] · g``).

    The compare with an iota is the formulation every partitioner splits like ``x`` and that
    GPU/TPU compilers fuse into the reduction. XLA:CPU instead materialises the selected
    ``[..., C]`` array (a write and a read of a logits-sized buffer, ~2× the cost of the whole
    integer-label cross-entropy), while a gather reads one element per row. So on CPU, chosen
    with :func:`jax.lax.platform_dependent`, the pick is a gather whenever the arrays' types
    allow it: no explicit-axes sharding at all (one device, auto sharding, inside
    ``shard_map``: XLA partitions that gather itself, with a row-sized all-reduce when the
    class axis is sharded), or, for ``[..., C]`` logits, an unsharded class axis whose other
    axes are sharded like the labels. Any other explicit sharding gets the iota on CPU too.
    """
    if not _gather_allowed(x, labels):
        return _iota_pick(x, labels)
    return jax.lax.platform_dependent(x, labels, cpu=_gather_pick, default=_iota_pick)


def _iota_pick(x: Array, labels: Array) -> Array:
    hit = is_label(labels, x.shape[-1])
    return jnp.sum(jnp.where(hit, x, jnp.zeros((), x.dtype)), axis=-1)


def _gather_pick(x: Array, labels: Array) -> Array:
    if x.ndim == 1:
        return jnp.take(x, labels, mode="clip")
    return jnp.take_along_axis(x, labels[..., None], axis=-1, mode="clip")[..., 0]


def _gather_allowed(x: Array, labels: Array) -> bool:
    x_spec, label_spec = explicit_spec(x), explicit_spec(labels)
    if all(s is None for s in x_spec + label_spec):
        return True
    return (
        x.ndim == labels.ndim + 1
        and x.shape[:-1] == labels.shape
        and x_spec[-1] is None
        and x_spec[:-1] == label_spec
    )


def one_hot_matmul(labels: Array, table: Array) -> Array:
    """``table[labels]`` of a ``[K, ...]`` table (cost rows, centroids), as ``one_hot @ table``.

    A matrix product with a one-hot operand (``HIGHEST`` precision, so TPUs do not round the
    table to bfloat16): exact for finite tables, no gather; its transpose (the gradient with
    respect to the table) is ``one_hot.T @ g``, a per-class sum instead of a scatter.
    """
    onehot = is_label(labels, table.shape[0]).astype(table.dtype)
    return jnp.tensordot(onehot, table, axes=1, precision=jax.lax.Precision.HIGHEST)


def class_sums(labels: Array, values: Array, num_classes: int) -> Array:
    """``[K, ...]`` per-class sums ``Σ_{i: y_i = k} values_i`` (a segment sum without scatter).

    ``labels`` ``[N]`` integer (labels outside ``[0, K)`` are dropped, as ``segment_sum``
    does), ``values`` ``[N]`` or ``[N, D]``; computed as ``one_hot(labels).T @ values`` at
    ``HIGHEST`` precision.
    """
    onehot = is_label(labels, num_classes).astype(values.dtype)
    # The sum over a sharded batch is replicated over it (an all-reduce of the [K, ...] sums);
    # explicit-axes meshes need that said, since the contracted axis is sharded.
    explicit = any(s is not None for s in explicit_spec(labels) + explicit_spec(values))
    out = None
    if explicit:  # values split like the labels (not gathered to meet replicated values)
        values = reshard_like(values, explicit_spec(labels)[:1] + explicit_spec(values)[1:])
        out = jax.sharding.PartitionSpec(None, *explicit_spec(values)[1:])
    return jnp.einsum(
        "n...,nk->k...", values, onehot, precision=jax.lax.Precision.HIGHEST, out_sharding=out
    )


def difference(predictions: ArrayLike, targets: ArrayLike | None) -> Array:
    """``predictions - targets`` after checking dtypes and shapes (``targets=None`` means 0).

    The shared first step of the regression losses; 16-bit inputs are upcast to float32.
    """
    predictions = upcast(float_array(predictions, "predictions"))
    if targets is None:
        return predictions
    targets = jnp.asarray(targets)
    if not jnp.issubdtype(targets.dtype, jnp.number):
        raise TypeError(f"targets must be a numeric array; got dtype {targets.dtype}.")
    if not broadcasts_to(targets.shape, predictions.shape):
        raise ValueError(
            f"targets has shape {tuple(targets.shape)}, which does not broadcast to the "
            f"predictions shape {tuple(predictions.shape)}."
        )
    return predictions - targets.astype(predictions.dtype)


def is_python_number(x: Any) -> bool:
    """Whether ``x`` is a Python ``int`` or ``float`` (not ``bool``): a value static under ``jit``,
    so a loss may choose its formulation by it at trace time."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def static_float(
    x: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Range-check a hyper-parameter when it is a concrete number (traced values pass through)."""
    if isinstance(x, jax.core.Tracer):
        return
    try:
        value = float(x)
    except (TypeError, ValueError):
        return  # arrays of per-class values are checked by their own users
    bad = (low is not None and (value < low or (low_open and value == low))) or (
        high is not None and (value > high or (high_open and value == high))
    )
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lo}{low}, {high}{hi}; got {value}.")


# ---------------------------------------------------------------------------------------------
# Keyword arguments from other libraries

#: Keywords users bring from PyTorch, Keras and TensorFlow → (jaxloss's name, what it means).
KEYWORD_HINTS: dict[str, tuple[str, str]] = {
    "weight": ("class_weights", "PyTorch's weight= (one weight per class)"),
    "sample_weight": ("weights", "Keras's sample_weight= (per-example weights)"),
    "sample_weights": ("weights", "per-example weights"),
    "class_weight": ("class_weights", "Keras's class_weight= (one weight per class)"),
    "mask": ("where", "a boolean mask (False: left out)"),
    "dim": ("axis", "PyTorch's dim="),
    "ignore_label": ("ignore_index", "the label value to leave out"),
    "size_average": ("reduction", "PyTorch's deprecated size_average="),
    "reduce": ("reduction", "PyTorch's deprecated reduce="),
    "smoothing": ("label_smoothing", "label smoothing"),
}
# Where a function has no ``class_weights``, ``weight=`` still means a weight: ``weights=``.
_FALLBACK = {"class_weights": ("weights", "a weight (this function has no class weights)")}


def unknown_keyword_message(name: str, accepted: Sequence[str], keyword: str) -> str:
    """The ``TypeError`` message for ``name(..., keyword=...)``, naming the fix when known."""
    head = f"{name}() got an unexpected keyword argument {keyword!r}"
    hint = KEYWORD_HINTS.get(keyword)
    if hint is not None:
        target, meaning = hint
        if target not in accepted and target in _FALLBACK:
            target, meaning = _FALLBACK[target]
        if target in accepted:
            return f"{head}: {meaning} is {target}= in jaxloss."
    close = difflib.get_close_matches(keyword, accepted, n=1)
    if close:
        return f"{head}; did you mean {close[0]}=?"
    return f"{head}; it takes {', '.join(f'{a}=' for a in accepted)}."


def teach_keywords(fn: F) -> F:
    """``fn`` whose unknown keyword arguments raise a ``TypeError`` that names the fix.

    ``weight=`` (PyTorch) names ``class_weights=``, ``sample_weight=`` (Keras) ``weights=``,
    and so on (:data:`KEYWORD_HINTS`); other misspellings get the closest accepted name. The
    signature, docstring and module stay ``fn``'s (``functools.wraps``); the check is one set
    comparison per call, at trace time under ``jit``.
    """
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return fn
    accepted = tuple(
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )
    names = frozenset(accepted)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs and not names.issuperset(kwargs):
            unknown = next(k for k in kwargs if k not in names)
            raise TypeError(unknown_keyword_message(fn.__name__, accepted, unknown))
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# checkify support

_CHECKING: contextvars.ContextVar[bool] = contextvars.ContextVar("jaxloss_checking", default=False)
# While :func:`checked` traces: ``id(in_range) → (in_range, labels)`` of the integer labels
# validated so far, so that the label check can quote the offending value (and spot -100).
_LABELS: contextvars.ContextVar[dict[int, tuple[Array, Array]] | None] = contextvars.ContextVar(
    "jaxloss_checked_labels", default=None
)


@contextlib.contextmanager
def _checking() -> Iterator[None]:
    token = _CHECKING.set(True)
    labels_token = _LABELS.set({})
    try:
        yield
    finally:
        _LABELS.reset(labels_token)
        _CHECKING.reset(token)


def remember_labels(in_range: Array, labels: Array) -> None:
    """Under :func:`checked`, keep the labels behind ``in_range`` so that :func:`labels_ok`
    can quote the first bad one (a no-op outside ``checked``)."""
    table = _LABELS.get()
    if table is not None:
        table[id(in_range)] = (in_range, labels)


def _remembered_labels(in_range: Array) -> Array | None:
    table = _LABELS.get()
    entry = None if table is None else table.get(id(in_range))
    return entry[1] if entry is not None and entry[0] is in_range else None


def value_check(ok: Array, message: str, **fmt: Array) -> None:
    """Record a value check that :func:`checked` turns into an exception.

    Outside :func:`checked` this is a no-op: the offending elements give NaN instead, so the
    function stays usable under plain ``jit``.
    """
    if _CHECKING.get():
        checkify.check(jnp.all(ok), message, **cast(dict[str, Any], fmt))


def checked(fn: F, *, jit: bool = True) -> F:
    """Run ``fn`` with value checks on: bad label values raise instead of giving NaN.

    jaxloss cannot raise on array *values* inside ``jit`` (out-of-range labels, for instance),
    so by default such elements give NaN. ``checked(fn)`` traces ``fn`` under
    :func:`jax.experimental.checkify.checkify` with jaxloss's value checks enabled and raises
    ``JaxRuntimeError`` with a clear message when one fails. ``fn`` is jitted unless
    ``jit=False``. Pass the plain (un-jitted) function: checks are inserted while tracing.

    The result composes with ``jax.jit``, ``vmap`` and ``grad``: called with concrete values
    (eagerly, or under ``grad``/``vmap`` outside ``jit``) it raises at the call; inside ``jit``
    the error leaves the compiled program through a ``jax.debug.callback`` and is raised when
    it runs (a ``jax.errors.JaxRuntimeError`` whose message ends with the check's). ``fn``
    must be callable (``TypeError`` at once otherwise).

    >>> import jax.numpy as jnp, jaxloss
    >>> loss = jaxloss.checked(jaxloss.softmax_cross_entropy_with_integer_labels)
    >>> loss(jnp.zeros((2, 3)), jnp.array([0, 7]))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    JaxRuntimeError: labels must lie in [0, 3) or equal ignore_index=None; ...
    """

    if not callable(fn):
        raise TypeError(
            f"checked takes a function (a loss, or your own function of jaxloss calls); got "
            f"{fn!r} of type {type(fn).__name__}."
        )
    if not isinstance(jit, bool):
        raise TypeError(f"jit must be a bool; got {jit!r}.")

    def traced(*args: Any, **kwargs: Any) -> Any:
        with _checking():
            return fn(*args, **kwargs)

    @functools.lru_cache(maxsize=64)
    def compiled(
        static_args: tuple[tuple[int, Any], ...],
        n_args: int,
        static_kwargs: tuple[tuple[str, Any], ...],
    ) -> Callable[..., Any]:
        def call(*arrays: Any, **array_kwargs: Any) -> Any:
            args, it, fixed = [], iter(arrays), dict(static_args)
            for i in range(n_args):
                args.append(fixed[i] if i in fixed else next(it))
            return traced(*args, **dict(static_kwargs), **array_kwargs)

        f = checkify.checkify(call, errors=checkify.user_checks)
        return jax.jit(f) if jit else f

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Python scalars, strings, tuples and None are static options (num_classes, reduction=,
        # ignore_index=, ...), positional or keyword; arrays are traced.
        static_args = tuple((i, a) for i, a in enumerate(args) if _is_static(a))
        arrays = [a for a in args if not _is_static(a)]
        static_kwargs = tuple(sorted((k, v) for k, v in kwargs.items() if _is_static(v)))
        array_kwargs = {k: v for k, v in kwargs.items() if not _is_static(v)}
        err, out = compiled(static_args, len(args), static_kwargs)(*arrays, **array_kwargs)
        _throw(err)
        return out

    return wrapper  # type: ignore[return-value]


def _throw(err: checkify.Error) -> None:
    """Raise ``err`` now when its values are known, else when the traced program runs.

    Eagerly (and under ``grad``/``vmap`` outside ``jit``) the error is concrete and raises at
    once. Under ``jit`` (and anything else that stages) it is a tracer: a ``jax.debug.callback``
    raises it when the compiled program runs (a ``checkify.check`` there would need an outer
    ``checkify`` to be functionalised).
    """
    leaves, treedef = jax.tree.flatten(err)
    if not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        err.throw()
        return
    jax.debug.callback(functools.partial(_throw_leaves, treedef), *leaves)


def _throw_leaves(treedef: Any, *leaves: Any) -> None:
    jax.tree.unflatten(treedef, leaves).throw()


def _is_static(v: Any) -> bool:
    return v is None or isinstance(v, str | bool | int | float | tuple)
