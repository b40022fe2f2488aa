"""Sharding matrix worker: run in a subprocess with 8 host CPU devices by ``test_scale.py``.

``python tests/scale_worker.py matrix`` runs every case of ``scale_cases.cases()`` on one device,
under ``jit`` with ``NamedSharding`` inputs on a 2×4 auto-axes mesh and on a 2×4 explicit-axes
mesh, and inside ``shard_map`` (batch over all 8 devices, ``axis_name=`` for the global value);
``python tests/scale_worker.py sweep`` runs the integer- and probability-label cross-entropies at
the vocabulary sizes of the issue on 1×8, 2×4 and 8×1 meshes against NumPy in float64. Each
program computes the value and the value+grad at once (one compile); its compiled HLO is read
for collectives that move the class axis. One JSON line per result, prefixed ``RESULT``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale_cases
from scale_cases import DATA, MODEL, spec

import jaxloss as jl

MOVING = ("all-gather", "all-to-all", "collective-permute")
_COLLECTIVE = re.compile(
    r"= (.*?) (all-gather|all-to-all|collective-permute|all-reduce|reduce-scatter)(?:-start)?\("
)


def emit(**result) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def collectives(hlo: str) -> list[tuple[str, list[int]]]:
    """``(op, output shape)`` of every collective in compiled HLO text (tuples: each part)."""
    out = []
    for line in hlo.splitlines():
        match = _COLLECTIVE.search(line)
        if match:
            for dims in re.findall(r"\w+\[([\d,]*)\]", match.group(1)):
                out.append((match.group(2), [int(d) for d in dims.split(",") if d]))
    return out


def class_moves(found: list[tuple[str, list[int]]], threshold: int) -> list[str]:
    """Collectives that move data between devices with an axis of ``threshold`` or more."""
    return [
        f"{op}{shape}" for op, shape in found if op in MOVING and max(shape, default=0) >= threshold
    ]


def max_error(got, want) -> float:
    """Largest ``|got - want| / (|want| + 1)`` over the leaves (NaN in both counts as equal)."""
    errors = [0.0]
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g.shape != w.shape:
            return float("inf")
        both_nan = np.isnan(g) & np.isnan(w)
        err = np.where(both_nan, 0.0, np.abs(g - w) / (np.abs(w) + 1.0))
        errors.append(float(np.max(err, initial=0.0)))
    return max(errors)


def _cotangent(out):
    return jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape).astype(out.dtype)


def value_and_grad_program(case):
    """``(value, grad)`` of a case in one program (grad of ``Σ out·cos(k)``; None without)."""

    def program(*args):
        value = case.fn(*args)
        if not case.grad:
            return value, None

        def scalar(first):
            out = case.fn(first, *args[1:])
            return jnp.sum((out * _cotangent(out)).astype(jnp.float32))

        return value, jax.grad(scalar)(args[0])

    return program


def run_matrix(names: tuple[str, ...] = ()) -> None:
    auto = jax.make_mesh((2, 4), (DATA, MODEL), axis_types=(AxisType.Auto,) * 2)
    explicit = jax.make_mesh((2, 4), (DATA, MODEL), axis_types=(AxisType.Explicit,) * 2)
    cases = [c for c in scale_cases.cases() if not names or c.name in names]
    wants = one_device(cases)
    pairs = []
    for case, want in zip(cases, wants, strict=True):
        if isinstance(want, str):
            emit(suite="matrix", case=case.name, mode="one-device", error=want)
        else:
            pairs.append((case, want))
    for mode, mesh in (("auto", auto), ("explicit", explicit)):
        # The cases expected to gather get their own programs (their HLO is reported); the
        # others run as one program, and one by one only if that shows a problem.
        for pair in pairs:
            if pair[0].gathers_class_axis:
                run_jit(*pair, mode, mesh)
        run_jit_bisecting([p for p in pairs if not p[0].gathers_class_axis], mode, mesh)
    run_shard_map([(c, w) for c, w in pairs if c.takes_axis_name], auto)


def one_device(cases) -> list:
    """Every case's ``(value, grad)`` on one device, in one program (an error string if not)."""
    try:
        programs = [value_and_grad_program(c) for c in cases]
        return jax.jit(lambda args: [f(*a) for f, a in zip(programs, args, strict=True)])(
            [c.args for c in cases]
        )
    except Exception:
        if len(cases) == 1:
            return [f"{type(e).__name__}: {str(e)[:400]}" for e in [sys.exc_info()[1]]]
        return [one_device([c])[0] for c in cases]  # find the case that fails


def _sharded_args(case, mesh) -> list:
    return [
        jax.device_put(a, NamedSharding(mesh, spec(layout, manual=False)))
        for a, layout in zip(case.args, case.layouts, strict=True)
    ]


def run_jit_bisecting(pairs, mode: str, mesh) -> None:
    """The cases as one program; halves of them where that fails, down to single cases."""
    if len(pairs) == 1:
        run_jit(*pairs[0], mode, mesh)
    elif pairs and not run_jit_together(pairs, mode, mesh):
        run_jit_bisecting(pairs[: len(pairs) // 2], mode, mesh)
        run_jit_bisecting(pairs[len(pairs) // 2 :], mode, mesh)


def run_jit_together(pairs, mode: str, mesh) -> bool:
    """All cases in one ``jit`` program; reports them and returns True if all is well."""
    threshold = scale_cases.C // 4
    programs = [value_and_grad_program(c) for c, _ in pairs]
    try:
        args = [_sharded_args(c, mesh) for c, _ in pairs]
        with jax.set_mesh(mesh):
            compiled = (
                jax.jit(lambda args: [f(*a) for f, a in zip(programs, args, strict=True)])
                .lower(args)
                .compile()
            )
            gots = compiled(args)
    except Exception:
        return False
    found = collectives(compiled.as_text())
    errors = [max_error(got, want) for (_, want), got in zip(pairs, gots, strict=True)]
    if class_moves(found, threshold) or any(
        e > c.rtol for e, (c, _) in zip(errors, pairs, strict=True)
    ):
        return False
    for (case, _), error in zip(pairs, errors, strict=True):
        emit(
            suite="matrix",
            case=case.name,
            mode=mode,
            error=None,
            max_error=error,
            rtol=case.rtol,
            class_moves=[],
            collectives=sorted({op for op, _ in found}),
            together=True,
        )
    return True


def run_jit(case, want, mode: str, mesh) -> None:
    """``jit`` with ``NamedSharding`` inputs: equal to one device, no class axis moved."""
    threshold = scale_cases.C // 4  # a class block of one device, larger than any other axis
    program = value_and_grad_program(case)
    try:
        args = _sharded_args(case, mesh)
        with jax.set_mesh(mesh):
            compiled = jax.jit(program).lower(*args).compile()
            got = compiled(*args)
        found = collectives(compiled.as_text())
        emit(
            suite="matrix",
            case=case.name,
            mode=mode,
            error=None,
            max_error=max_error(got, want),
            rtol=case.rtol,
            class_moves=class_moves(found, threshold),
            collectives=sorted({op for op, _ in found}),
            class_sized_all_reduces=[
                f"{op}{shape}"
                for op, shape in found
                if op == "all-reduce" and max(shape, default=0) >= threshold
            ],
        )
    except Exception as error:
        emit(
            suite="matrix",
            case=case.name,
            mode=mode,
            error=f"{type(error).__name__}: {str(error)[:400]}",
        )


def run_shard_map(pairs, mesh) -> None:
    """Inside ``shard_map`` with the batch over all 8 devices: the global value and gradient.

    The losses' ``axis_name=`` makes each device's value the global one; all cases run in one
    program (one per case only to find a failing one).
    """
    axes = (DATA, MODEL)

    def local_of(case):
        def local(*args):
            if not case.grad:
                return case.fn(*args, axis_name=axes), None
            first = args[0]
            return jax.value_and_grad(lambda f: case.fn(f, *args[1:], axis_name=axes))(first)

        return local

    def specs(case):
        in_specs = tuple(spec(layout, manual=True) for layout in case.layouts)
        return in_specs, (P(), in_specs[0] if case.grad else P())

    cases = [c for c, _ in pairs]
    try:
        program = jax.shard_map(
            lambda args: [local_of(c)(*a) for c, a in zip(cases, args, strict=True)],
            mesh=mesh,
            in_specs=([specs(c)[0] for c in cases],),
            out_specs=[specs(c)[1] for c in cases],
        )
        gots = jax.jit(program)([c.args for c in cases])
    except Exception as error:
        if len(pairs) == 1:
            emit(
                suite="matrix",
                case=cases[0].name,
                mode="shard_map",
                error=f"{type(error).__name__}: {str(error)[:400]}",
            )
        else:
            for pair in pairs:
                run_shard_map([pair], mesh)
        return
    for (case, want), got in zip(pairs, gots, strict=True):
        emit(
            suite="matrix",
            case=case.name,
            mode="shard_map",
            error=None,
            max_error=max_error(got, want),
            rtol=case.rtol,
            class_moves=[],  # the class axis is whole inside shard_map here
        )


# ---------------------------------------------------------------------------------------------
# The cross-entropy at large vocabularies.

VOCABULARIES = (1000, 24576, 32000, 50304, 73728, 102400, 128000, 151936)
MESHES = ((1, 8), (2, 4), (8, 1))
ROWS = 16


def _reference(x: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``x`` against probability rows ``labels`` and its gradient (f64)."""
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    log_p = x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))
    per = -(labels * log_p).sum(axis=-1)
    grad = (np.exp(log_p) * labels.sum(axis=-1, keepdims=True) - labels) / x.shape[0]
    return per.mean(), grad


def run_sweep(kinds: tuple[str, ...]) -> None:
    for v in VOCABULARIES:
        rng = np.random.default_rng(v)
        x = (rng.normal(size=(ROWS, v)) * 2).astype(np.float32)
        y = rng.integers(0, v, ROWS).astype(np.int32)
        probs = np.zeros((ROWS, v), np.float32)
        probs[np.arange(ROWS), y] = 0.75
        probs[np.arange(ROWS), (y + 7) % v] = 0.25
        references = {
            "integer": _reference(x, _onehot(y, v)),
            "probability": _reference(x, probs.astype(np.float64)),
        }
        for label_kind in ("integer", "probability"):
            labels = y if label_kind == "integer" else probs
            fn = (
                jl.softmax_cross_entropy_with_integer_labels
                if label_kind == "integer"
                else jl.softmax_cross_entropy
            )

            def program(x, labels, fn=fn):
                loss = lambda x: fn(x, labels, reduction="mean")  # noqa: E731
                return loss(x), jax.value_and_grad(loss)(x)

            for shape in MESHES:
                for kind in kinds:
                    if kind == "Explicit" and shape[1] == 1:
                        continue  # the class axis unsharded: the auto-axes run covers it
                    mesh = jax.make_mesh(
                        shape, (DATA, MODEL), axis_types=(getattr(AxisType, kind),) * 2
                    )
                    try:
                        xs = jax.device_put(x, NamedSharding(mesh, P(DATA, MODEL)))
                        label_spec = P(DATA) if label_kind == "integer" else P(DATA, MODEL)
                        ls = jax.device_put(labels, NamedSharding(mesh, label_spec))
                        with jax.set_mesh(mesh):
                            compiled = jax.jit(program).lower(xs, ls).compile()
                            value, (value_vg, grad) = compiled(xs, ls)
                        want_value, want_grad = references[label_kind]
                        found = collectives(compiled.as_text())
                        emit(
                            suite="sweep",
                            case=f"{label_kind} V={v} mesh={shape[0]}x{shape[1]} {kind}",
                            error=None,
                            value_error=abs(float(value) - want_value) / (abs(want_value) + 1),
                            value_grad_error=abs(float(value_vg) - want_value)
                            / (abs(want_value) + 1),
                            grad_error=float(
                                np.max(np.abs(np.asarray(grad, np.float64) - want_grad))
                            ),
                            class_moves=class_moves(found, 100),
                            collectives=sorted({op for op, _ in found}),
                        )
                    except Exception as error:
                        emit(
                            suite="sweep",
                            case=f"{label_kind} V={v} mesh={shape[0]}x{shape[1]} {kind}",
                            error=f"{type(error).__name__}: {str(error)[:400]}",
                        )


def _onehot(y: np.ndarray, v: int) -> np.ndarray:
    out = np.zeros((y.shape[0], v))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


if __name__ == "__main__":
    assert jax.device_count() == 8, jax.devices()
    if sys.argv[1] == "matrix":
        run_matrix(tuple(sys.argv[2:]))
    else:
        run_sweep(tuple(sys.argv[2:]) or ("Auto", "Explicit"))
