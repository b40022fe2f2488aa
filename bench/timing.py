"""Measurement machinery: interleaved timing, page faults, compiled memory, HLO traffic, bandwidth.

Everything here is independent of what is being measured. A *contender* is a callable on fixed
arguments; :func:`time_interleaved` calls the contenders of one case in alternating order
(A B … B A, round after round) so that drift of a shared machine lands on all of them alike, and
returns per-call times of every round. Ratios are then taken round by round
(:func:`paired_ratio`), which cancels most of the drift that a ratio of two medians would keep.
"""

from __future__ import annotations

import math
import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Contender",
    "Timing",
    "bandwidth",
    "compiled_stats",
    "hlo_traffic",
    "paired_ratio",
    "time_interleaved",
]


@dataclass
class Contender:
    """One implementation of a case: ``fn(*args)`` is timed.

    ``kind="jax"``: ``fn`` is a plain JAX function; it is jitted here and results are waited for
    with ``block_until_ready``. ``kind="torch"``: ``fn`` runs eagerly (PyTorch CPU is
    synchronous). ``kind="python"``: any other callable, timed as is.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kind: str = "jax"
    compiled: Any = field(default=None, repr=False)

    def prepare(self) -> Callable[[], Any]:
        """Return a zero-argument callable that runs one call to completion."""
        if self.kind == "jax":
            jitted = jax.jit(self.fn)
            self.compiled = jitted.lower(*self.args).compile()
            compiled, args = self.compiled, self.args
            return lambda: jax.block_until_ready(compiled(*args))
        fn, args = self.fn, self.args
        return lambda: fn(*args)


@dataclass
class Timing:
    """Per-call seconds of every round, and minor page faults per call."""

    times: list[float]
    page_faults: float
    loops: int
    cpu_times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        """Median process CPU seconds (user + system, all threads) per call."""
        return statistics.median(self.cpu_times) if self.cpu_times else float("nan")

    @property
    def iqr(self) -> tuple[float, float]:
        q = np.percentile(self.times, [25, 75])
        return float(q[0]), float(q[1])


def _usage() -> tuple[int, float]:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_minflt, u.ru_utime + u.ru_stime


def time_interleaved(
    runners: dict[str, Callable[[], Any]],
    *,
    rounds: int | None = None,
    budget_s: float = 4.0,
    min_rounds: int = 5,
    max_rounds: int = 41,
    min_sample_s: float = 0.01,
    warmup: int = 2,
) -> dict[str, Timing]:
    """Time zero-argument callables side by side, alternating their order every round.

    Each callable is warmed up ``warmup`` times; then, per round, each one runs ``loops`` calls
    back to back (``loops`` chosen so one sample lasts ``≥ min_sample_s``), and the per-call time
    of the sample is recorded, with the process CPU time (user + system, all threads) of the
    sample: on a shared machine CPU time is far less sensitive to other tenants than wall
    time. Round ``r`` runs the contenders in the given order when ``r`` is even and in reverse
    when odd. ``rounds`` defaults to as many as fit in ``budget_s`` (clamped
    to ``[min_rounds, max_rounds]``).
    """
    names = list(runners)
    single: dict[str, float] = {}
    if rounds is not None and warmup == 0:
        # Calls of seconds (the caller already ran each once): one call a sample, no probe.
        loops = dict.fromkeys(names, 1)
    else:
        for name in names:
            for _ in range(warmup):
                runners[name]()
            t0 = time.perf_counter()
            runners[name]()
            single[name] = max(time.perf_counter() - t0, 1e-7)
        loops = {n: max(1, math.ceil(min_sample_s / single[n])) for n in names}
    if rounds is None:
        per_round = sum(single[n] * loops[n] for n in names)
        rounds = int(min(max_rounds, max(min_rounds, budget_s / per_round)))
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    faults: dict[str, int] = dict.fromkeys(names, 0)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            run, k = runners[name], loops[name]
            f0, c0 = _usage()
            t0 = time.perf_counter()
            for _ in range(k):
                run()
            times[name].append((time.perf_counter() - t0) / k)
            f1, c1 = _usage()
            faults[name] += f1 - f0
            cpu[name].append((c1 - c0) / k)
    return {n: Timing(times[n], faults[n] / (rounds * loops[n]), loops[n], cpu[n]) for n in names}


def paired_ratio(baseline: Sequence[float], other: Sequence[float]) -> float:
    """Median over rounds of ``baseline[r] / other[r]``: > 1 means ``other`` is faster."""
    return float(statistics.median(b / o for b, o in zip(baseline, other, strict=True)))


# ---------------------------------------------------------------------------------------------
# Compiled memory and HLO traffic.

_DTYPE_BYTES = {
    "pred": 1,
    "s8": 1,
    "u8": 1,
    "bf16": 2,
    "f16": 2,
    "s16": 2,
    "u16": 2,
    "f32": 4,
    "s32": 4,
    "u32": 4,
    "f64": 8,
    "s64": 8,
    "u64": 8,
}
_SHAPE = re.compile(r"\b(pred|[sufb]f?\d+)\[([\d,]*)\]")
_INSTR = re.compile(r"^\s*(?:ROOT )?%(\S+) = (.+?) (\S+?)\((.*)$")
_SKIP = {
    "parameter",
    "constant",
    "tuple",
    "get-tuple-element",
    "bitcast",
    "copy-start",
    "copy-done",
    "after-all",
}


def _shape_bytes(text: str) -> int:
    total = 0
    for dtype, dims in _SHAPE.findall(text):
        size = math.prod(int(d) for d in dims.split(",") if d) if dims else 1
        total += size * _DTYPE_BYTES.get(dtype, 4)
    return total


def hlo_traffic(hlo_text: str, min_bytes: int = 1 << 20) -> dict[str, Any]:
    """Estimate the memory traffic of a compiled module from its optimised HLO.

    For each top-level instruction of the entry computation (fusions, custom calls; parameters,
    bitcasts and tuples skipped), count the bytes of every operand it reads and of the result it
    writes, keeping only arrays of at least ``min_bytes`` (the big ones). Returns the total bytes
    read and written and the list of the big kernels: the number a reader compares with the
    minimum traffic of the algorithm. An estimate: a fusion that gathers a few elements of a
    big operand, or scatters into it in place, is counted as not touching it.
    """
    bodies = {}
    for block in re.split(r"\n(?=%|ENTRY )", hlo_text):
        head = re.match(r"%(\S+) ", block)
        if head:
            bodies[head.group(1)] = block
    entry = hlo_text.split("\nENTRY ", 1)[-1]
    shapes: dict[str, int] = {}
    read = written = 0
    kernels = []
    for line in entry.splitlines()[1:]:
        m = _INSTR.match(line)
        if not m:
            continue
        name, shape, op, rest = m.groups()
        out_bytes = _shape_bytes(shape)
        shapes[name] = out_bytes
        if op in _SKIP:
            continue
        operands = re.findall(r"%([\w.\-]+)", rest.split("), ")[0])
        in_bytes = [shapes.get(o, 0) for o in operands]
        big_in = sum(b for b in in_bytes if b >= min_bytes)
        big_out = out_bytes if out_bytes >= min_bytes else 0
        called = re.search(r"calls=%([\w.\-]+)", rest)
        body = bodies.get(called.group(1), "") if called else ""
        if op == "scatter" or " scatter(" in body:
            big_in = big_out = 0  # in place: touches only the updated rows
        elif (op == "gather" or " gather(" in body or "dynamic-slice(" in body) and not big_out:
            big_in = 0  # reads only the gathered elements
        if big_in or big_out:
            kind = re.search(r"kind=(\w+)", rest)
            cfg = re.search(r'"kind":"(\w+)"', rest)
            kernels.append(
                {
                    "name": name,
                    "op": op,
                    "kind": (cfg or kind).group(1) if (cfg or kind) else op,
                    "read_bytes": big_in,
                    "write_bytes": big_out,
                }
            )
            read += big_in
            written += big_out
    return {"read_bytes": read, "write_bytes": written, "kernels": kernels}


def compiled_stats(compiled: Any) -> dict[str, Any]:
    """Peak/temporary bytes from ``memory_analysis()`` and the HLO traffic estimate."""
    out: dict[str, Any] = {}
    try:
        mem = compiled.memory_analysis()
        out["temp_bytes"] = int(mem.temp_size_in_bytes)
        out["argument_bytes"] = int(mem.argument_size_in_bytes)
        out["output_bytes"] = int(mem.output_size_in_bytes)
        out["alias_bytes"] = int(mem.alias_size_in_bytes)
        out["peak_bytes"] = (
            out["temp_bytes"] + out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"]
        )
    except Exception as err:  # some backends have no memory analysis
        out["memory_analysis_error"] = repr(err)
    try:
        traffic = hlo_traffic(compiled.as_text())
        out["hlo_read_bytes"] = traffic["read_bytes"]
        out["hlo_write_bytes"] = traffic["write_bytes"]
        out["hlo_kernels"] = [f"{k['kind']}:{k['name']}" for k in traffic["kernels"]]
    except Exception as err:
        out["hlo_error"] = repr(err)
    return out


# ---------------------------------------------------------------------------------------------
# The machine's bandwidth ceiling.


def bandwidth(gib: float = 1.0, rounds: int = 7) -> dict[str, float]:
    """Measure the memory bandwidth that jitted XLA code reaches on this device, in GB/s.

    ``read``: a jitted sum of a ``gib`` GiB float32 array (bytes read / time).
    ``read_write``: ``x * 2`` into a fresh output buffer (bytes read + bytes written / time),
    the pattern of a gradient written into a new array. Both are interleaved medians.
    """
    n = int(gib * (1 << 30)) // 4
    x = jnp.ones((n,), jnp.float32) * 1.5
    x.block_until_ready()
    read = jax.jit(lambda a: jnp.sum(a))
    rw = jax.jit(lambda a: a * 2.0)
    runners = {
        "read": lambda: read(x).block_until_ready(),
        "read_write": lambda: rw(x).block_until_ready(),
    }
    timing = time_interleaved(runners, rounds=rounds, min_sample_s=0.0, warmup=1)
    nbytes = n * 4
    return {
        "read_gbs": nbytes / timing["read"].median / 1e9,
        "read_write_gbs": 2 * nbytes / timing["read_write"].median / 1e9,
        "array_gib": gib,
        "read_page_faults_per_call": timing["read"].page_faults,
        "read_write_page_faults_per_call": timing["read_write"].page_faults,
    }
