"""Run the selected families and collect one result record per case."""

from __future__ import annotations

import dataclasses
import datetime
import gc
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jaxlib
import optax

from bench.cases import ACCELERATOR_ONLY, FAMILIES, MISSING_NOTE, Case, torch_or_none
from bench.timing import Contender, bandwidth, compiled_stats, paired_ratio, time_interleaved

__all__ = ["environment", "run", "select_cases"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, str]:
    """CPU 0's caches as the kernel reports them (``{"L1d": "48K", "L2": "2048K", ...}``);
    empty where ``/sys`` does not say. On shared machines of one model name the last-level
    cache differs between instances, and the large_vocab ratios with it."""
    caches: dict[str, str] = {}
    try:
        entries = sorted(Path(root).glob("index*"))
    except OSError:
        return caches
    for entry in entries:
        try:
            fields = {
                name: (entry / name).read_text().strip() for name in ("level", "type", "size")
            }
        except OSError:
            continue
        kind = {"Data": "d", "Instruction": "i"}.get(fields["type"], "")
        caches[f"L{fields['level']}{kind}"] = fields["size"]
    return caches


def _thp() -> str:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def environment() -> dict[str, Any]:
    """Versions, device, allocator setting: everything a reader needs to reproduce a number."""
    device = jax.devices()[0]
    torch = torch_or_none()
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "torch": None if torch is None else torch.__version__,
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_caches": _cpu_caches(),
        "load_average": os.getloadavg(),
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", ""),
        "transparent_hugepage": _thp(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
    }


def select_cases(families: Sequence[str] | None, quick: bool, log: Any = print) -> list[Case]:
    """The cases of the chosen families (substring match); skipped families are logged."""
    chosen = [f for f in FAMILIES if not families or any(s in f for s in families)]
    cases: list[Case] = []
    for name in chosen:
        got = FAMILIES[name](quick)
        if not got and name in MISSING_NOTE:
            log(f"[bench] skipping family {name!r}: {MISSING_NOTE[name]} is not importable yet")
        elif not got and name in ACCELERATOR_ONLY and not quick:
            log(f"[bench] skipping family {name!r}: it runs only on a GPU or TPU")
        cases.extend(got)
    if torch_or_none() is None:
        log(
            "[bench] PyTorch not installed: torch contenders skipped "
            "(`.venv/bin/pip install torch` to add them)"
        )
    return cases


def _loss_value(c: Contender, out: Any) -> float | None:
    """The scalar loss of one call's output (value, or the value of value_and_grad)."""
    try:
        if isinstance(out, tuple):
            out = out[0]
        if c.kind == "torch":
            return float(out.detach().float().item()) if out.ndim == 0 else None
        return float(out) if getattr(out, "ndim", 1) == 0 else None
    except Exception:
        return None


def run_case(case: Case, *, quick: bool) -> dict[str, Any]:
    """Time one case's contenders side by side and return its record."""
    contenders = case.build()
    runners = {}
    values: dict[str, float | None] = {}
    for c in contenders:
        runners[c.name] = c.prepare()
        out = c.fn(*c.args) if c.kind != "jax" else c.compiled(*c.args)
        values[c.name] = _loss_value(c, out)
        del out
    # Cases whose calls take seconds fix their own round count (``info["rounds"]``) and skip
    # the warm-up (the value call above already ran each one once).
    timings = time_interleaved(
        runners,
        rounds=case.info.get("rounds"),
        warmup=case.info.get("warmup", 2),
        budget_s=0.8 if quick else 6.0,
        min_rounds=3 if quick else 7,
        min_sample_s=0.005 if quick else 0.02,
    )
    base = timings[case.baseline]
    record: dict[str, Any] = {
        "family": case.family,
        "name": case.name,
        "baseline": case.baseline,
        "note": case.note,
        "contenders": {},
    }
    if case.traffic is not None:
        record["traffic"] = dataclasses.asdict(case.traffic)
    for c in contenders:
        tm = timings[c.name]
        entry: dict[str, Any] = {
            "median_ms": tm.median * 1e3,
            "iqr_ms": [q * 1e3 for q in tm.iqr],
            "rounds": len(tm.times),
            "loops_per_sample": tm.loops,
            "page_faults_per_call": tm.page_faults,
            "speedup_vs_baseline": paired_ratio(base.times, tm.times),
            "cpu_median_ms": tm.cpu_median * 1e3,
            "cpu_speedup_vs_baseline": paired_ratio(base.cpu_times, tm.cpu_times),
            "loss": values[c.name],
        }
        if c.kind == "jax" and c.compiled is not None:
            entry["memory"] = compiled_stats(c.compiled)
        if case.traffic is not None:
            entry["effective_gbs"] = case.traffic.min_bytes / tm.median / 1e9
        record["contenders"][c.name] = entry
    if "vocab" in case.info:
        record["vocab"] = case.info["vocab"]
    check = case.info.get("check")
    if check is not None:
        record["check"] = check({c.name: c for c in contenders})
    del contenders, runners
    gc.collect()
    return record


def run(
    families: Sequence[str] | None = None,
    *,
    quick: bool = False,
    bandwidth_gib: float | None = None,
    progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Run every selected case; returns ``{"environment", "bandwidth", "cases", "skipped"}``."""
    env = environment()
    cases = select_cases(families, quick, log)
    gib = bandwidth_gib if bandwidth_gib is not None else (0.125 if quick else 1.0)
    bw_before = bandwidth(gib) if gib > 0 else None
    records = []
    iterator: Any = cases
    if progress:
        from tqdm import tqdm

        iterator = tqdm(cases, desc="bench", unit="case", file=sys.stderr)
    for case in iterator:
        if progress:
            iterator.set_postfix_str(case.name[:48])
        try:
            records.append(run_case(case, quick=quick))
        except Exception as err:  # one broken case must not lose the run
            log(f"[bench] case {case.name!r} failed: {type(err).__name__}: {err}")
            records.append(
                {
                    "family": case.family,
                    "name": case.name,
                    "baseline": case.baseline,
                    "error": f"{type(err).__name__}: {err}",
                    "contenders": {},
                }
            )
        gc.collect()
    bw_after = bandwidth(gib) if gib > 0 else None
    bw = None
    if bw_before is not None and bw_after is not None:
        bw = {k: max(bw_before[k], bw_after[k]) for k in ("read_gbs", "read_write_gbs")}
        bw.update(array_gib=gib, before=bw_before, after=bw_after)
        for record in records:
            add_limits(record, bw)
    return {"environment": env, "bandwidth": bw, "cases": records, "quick": quick}


def add_limits(record: dict[str, Any], bw: dict[str, float]) -> None:
    """Add the two-pass time limit and each contender's fraction of it and of the bandwidth.

    The limit is ``read_bytes / read_bw + read_write_bytes / read_write_bw`` with the higher of
    the bandwidths measured before and after the cases (the conservative choice: a faster
    ceiling makes every fraction smaller).
    """
    t = record.get("traffic")
    if t is None:
        return
    limit_s = t["read_bytes"] / (bw["read_gbs"] * 1e9) + t["read_write_bytes"] / (
        bw["read_write_gbs"] * 1e9
    )
    record["two_pass_limit_ms"] = limit_s * 1e3
    ceiling = bw["read_write_gbs"] if t["write"] else bw["read_gbs"]
    for entry in record["contenders"].values():
        entry["fraction_of_bandwidth"] = entry["effective_gbs"] / ceiling
        if limit_s > 0:
            entry["fraction_of_two_pass_limit"] = limit_s / (entry["median_ms"] / 1e3)
