"""Write a run's results: JSON (everything), a Markdown table and a PNG chart."""

from __future__ import annotations

import json
import os
import re
from typing import Any

__all__ = ["machine_name", "markdown", "write_results"]


def machine_name(env: dict[str, Any]) -> str:
    """A short file-name-safe machine label, e.g. ``cpu-amd-epyc-2c`` or ``gpu-nvidia-h100``."""
    if env["platform"] == "cpu":
        model = re.sub(r"\(.*?\)|processor|\d+-core|cpu", "", env["cpu"], flags=re.I)
        words = re.findall(r"[a-z0-9]+", model.lower())[:3]
        return "-".join(["cpu", *words, f"{env['cpu_count']}c"])
    words = re.findall(r"[a-z0-9]+", env["device_kind"].lower())[:3]
    return "-".join([env["platform"], *words])


def _ms(x: float) -> str:
    return f"{x:.3g}" if x < 10 else f"{x:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: environment, bandwidth, and one table per family."""
    env, bw = results["environment"], results["bandwidth"]
    load = ", ".join(f"{v:.1f}" for v in env["load_average"])
    caches = ", ".join(f"{k} {v}" for k, v in env.get("cpu_caches", {}).items())
    lines = [
        f"# jaxloss benchmark — {env['date_utc']} UTC",
        "",
        f"- device: {env['platform']} / {env['device_kind']} ({env['cpu']}, "
        f"{env['cpu_count']} cores; load average at start {load})",
        *([f"- CPU caches (per instance): {caches}"] if caches else []),
        f"- versions: jax {env['jax']}, jaxlib {env['jaxlib']}, optax {env['optax']}, "
        f"torch {env['torch'] or 'not installed'}, Python {env['python']}",
        f"- allocator: GLIBC_TUNABLES={env['GLIBC_TUNABLES'] or '(unset)'}; "
        f"transparent_hugepage: {env['transparent_hugepage']}",
        f"- mode: {'--quick' if results['quick'] else 'full'}",
    ]
    if env["platform"] == "cpu":
        lines.append("- no GPU/TPU: JAX saw only the CPU in this run, so every number is XLA:CPU")
    if bw:
        lines.append(
            f"- measured bandwidth ({bw['array_gib']} GiB float32, higher of before/after): "
            f"read {bw['read_gbs']:.1f} GB/s, read+write into a fresh buffer "
            f"{bw['read_write_gbs']:.1f} GB/s (before: {bw['before']['read_gbs']:.1f} / "
            f"{bw['before']['read_write_gbs']:.1f}; after: {bw['after']['read_gbs']:.1f} / "
            f"{bw['after']['read_write_gbs']:.1f})"
        )
    lines += [
        "",
        "Times are medians of interleaved rounds. **speedup** is the median over rounds of "
        "baseline time / contender time (> 1: faster than the baseline); **CPU ms** and **CPU "
        "speedup** are the same for the process's CPU time (user + system, all threads), which "
        "other tenants of a shared machine disturb far less than wall time. **limit** is the "
        "two-pass bandwidth limit of the case at the measured bandwidth; **% limit** = limit / "
        "time. **faults** are minor page faults per call. **HLO r/w** are the bytes the "
        "compiled module's big kernels read / write, in units of the logits' size.",
    ]
    family = None
    for rec in results["cases"]:
        if rec["family"] != family:
            family = rec["family"]
            lines += ["", f"## {family}", ""]
        lines += [
            "",
            f"**{rec['name']}** (baseline: {rec['baseline']})"
            + (f" — {rec['note']}" if rec.get("note") else ""),
            "",
        ]
        if rec.get("error"):
            lines.append(f"failed: `{rec['error'][:300]}`")
            continue
        limit = rec.get("two_pass_limit_ms")
        head = (
            "| contender | median ms | speedup | CPU ms | CPU speedup | faults | temp MB "
            "| HLO r/w |"
        )
        sep = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        if limit:
            head += " GB/s | % limit |"
            sep += " ---: | ---: |"
        lines += [head, sep]
        unit = None
        if rec.get("traffic"):
            unit = rec["traffic"]["min_bytes"] / (2 if rec["traffic"]["write"] else 1)
        for name, c in rec["contenders"].items():
            mem = c.get("memory", {})
            temp = f"{mem['temp_bytes'] / 1e6:.1f}" if "temp_bytes" in mem else "–"
            hlo = "–"
            if "hlo_read_bytes" in mem and unit:
                hlo = f"{mem['hlo_read_bytes'] / unit:.1f} / {mem['hlo_write_bytes'] / unit:.1f}"
            row = (
                f"| {name} | {_ms(c['median_ms'])} | {c['speedup_vs_baseline']:.2f}× | "
                f"{_ms(c['cpu_median_ms'])} | {c['cpu_speedup_vs_baseline']:.2f}× | "
                f"{c['page_faults_per_call']:.0f} | {temp} | {hlo} |"
            )
            if limit:
                frac = c.get("fraction_of_two_pass_limit")
                row += (
                    f" {c['effective_gbs']:.1f} | " + (f"{100 * frac:.0f}%" if frac else "–") + " |"
                )
            lines.append(row)
        if limit:
            lines.append(f"\ntwo-pass limit: {_ms(limit)} ms")
        if rec.get("vocab"):
            base = rec["contenders"][rec["baseline"]].get("memory", {}).get("temp_bytes")
            less = [
                f"{name} {base / c['memory']['temp_bytes']:.1f}×"
                for name, c in rec["contenders"].items()
                if name != rec["baseline"] and c.get("memory", {}).get("temp_bytes") and base
            ]
            if less:
                lines.append(
                    f"\ntemporary memory, {rec['baseline']} / contender: " + ", ".join(less)
                )
        if rec.get("check"):
            chk = ", ".join(f"{k}={v:.6g}" for k, v in rec["check"].items())
            lines.append(f"\ncheck: {chk}")
    return "\n".join(lines) + "\n"


# One colour per contender in every chart (matplotlib's tab10, fixed by name); contenders not
# listed here get the remaining colours in order of appearance.
COLOURS = {
    "jaxloss": "#1f77b4",
    "jaxloss+contract": "#17becf",
    "optax": "#ff7f0e",
    "optax+count": "#bcbd22",
    "plain": "#2ca02c",
    "two-pass": "#9467bd",
    "torch": "#d62728",
}
SPARE_COLOURS = ["#8c564b", "#e377c2", "#7f7f7f", "#aec7e8", "#ffbb78"]


def colour(name: str, others: list[str]) -> str:
    """The contender's colour: fixed for the known ones, then the spares in order."""
    if name in COLOURS:
        return COLOURS[name]
    unknown = [n for n in others if n not in COLOURS]
    return SPARE_COLOURS[unknown.index(name) % len(SPARE_COLOURS)]


def chart(results: dict[str, Any], path: str) -> None:
    """A horizontal bar chart of every contender's speedup over its case's baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [rec for rec in results["cases"] if rec["contenders"]]
    names = sorted(
        {n for rec in cases for n in rec["contenders"]}, key=lambda n: (n != "jaxloss", n)
    )
    height = max(3.0, 0.42 * len(cases) + 2.0)
    fig, ax = plt.subplots(figsize=(12, height))
    bar = 0.8 / max(1, len(names))
    for j, name in enumerate(names):
        ys, xs = [], []
        for i, rec in enumerate(cases):
            if name in rec["contenders"]:
                ys.append(i + j * bar)
                xs.append(rec["contenders"][name]["speedup_vs_baseline"])
        ax.barh(ys, xs, height=bar, label=name, color=colour(name, names))
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks([i + 0.4 - bar / 2 for i in range(len(cases))])
    ax.set_yticklabels([f"{r['name']} (vs {r['baseline']})" for r in cases], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speedup over the case's baseline (median of paired rounds; > 1 is faster)")
    env = results["environment"]
    rounds = sorted({c["rounds"] for rec in cases for c in rec["contenders"].values()})
    mode = "--quick (small arrays)" if results.get("quick") else "full run"
    ax.set_title(
        f"jaxloss bench, {mode}: {env['device_kind']} ({env['platform']}, "
        f"{env['cpu_count']} CPUs), {env['date_utc'][:16]} UTC, jax {env['jax']}; "
        f"{'-'.join(map(str, [rounds[0], rounds[-1]])) if rounds else '?'} rounds per case",
        fontsize=9,
    )
    # Outside the axes, right of the bars, so that it covers none of them.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="contender")
    fig.subplots_adjust(left=0.40, right=0.86, top=1 - 0.5 / height, bottom=0.7 / height)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def large_vocab_chart(results: dict[str, Any], path: str) -> bool:
    """Temporary memory (compiled ``memory_analysis()``) against V, one line per contender, of
    the ``large_vocab`` family; ``False`` (nothing written) when the run has none of it."""
    cases = [
        rec for rec in results["cases"] if rec["family"] == "large_vocab" and rec["contenders"]
    ]
    if not cases:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(cases[0]["contenders"])
    for name in names:
        vs, mem, ms = [], [], []
        for rec in cases:
            c = rec["contenders"].get(name)
            if c is None or "temp_bytes" not in c.get("memory", {}):
                continue
            vs.append(rec["vocab"])
            mem.append(c["memory"]["temp_bytes"] / 2**20)
            ms.append(c["median_ms"] / 1e3)
        ax.plot(vs, mem, "o-", label=name, color=colour(name, names))
        bx.plot(vs, ms, "o-", label=name, color=colour(name, names))
    ax.set(xscale="log", yscale="log", xlabel="vocabulary V", ylabel="temporary memory (MiB)")
    bx.set(xscale="log", yscale="log", xlabel="vocabulary V", ylabel="value+grad time (s)")
    ax.set_title("compiled temp memory (memory_analysis)", fontsize=9)
    bx.set_title(cases[0]["name"].rsplit(" V=", 1)[0], fontsize=9)
    for a in (ax, bx):
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_results(results: dict[str, Any], out_dir: str, stem: str | None = None) -> list[str]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``out_dir``; return paths."""
    os.makedirs(out_dir, exist_ok=True)
    env = results["environment"]
    stem = stem or f"{machine_name(env)}-{env['date_utc'][:10]}"
    base = os.path.join(out_dir, stem)
    with open(base + ".json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(base + ".md", "w") as f:
        f.write(markdown(results))
    paths = [base + ".json", base + ".md"]
    if results["cases"]:
        chart(results, base + ".png")
        paths.append(base + ".png")
        if large_vocab_chart(results, base + "-large_vocab.png"):
            paths.append(base + "-large_vocab.png")
    return paths
