"""Numbers in prose, generated from the committed results files (no drift).

The README and the docs quote two results files:

* the newest timed benchmark run, ``bench/results/<machine>-<date>.json`` (written by
  ``python -m bench``), as its environment line and summary table;
* the newest run with the ``large_vocab`` family anywhere under ``bench/results`` (a
  ``--filter large_vocab`` run is written to a dated folder), as its memory and time table,
  and every such run's time ratios (machines differ);
* the few-label digits benchmark, ``bench/results/semi_supervised_digits.md`` (written by
  ``python examples/semi_supervised_digits.py --write-results``), as its table and timing line.

The README holds them between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME
-->`` markers. ``python -m tools.generated`` rewrites those blocks; ``--check`` exits non-zero
when one differs (``tests/test_docs.py`` runs the check). The docs' performance page is
generated from the same files at build time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SEMI = RESULTS / "semi_supervised_digits.md"
README = ROOT / "README.md"
BLOCK = re.compile(
    r"(<!-- BEGIN generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
    r"(<!-- END generated: (?P=name) -->)",
    re.S,
)

__all__ = [
    "latest_bench",
    "bench_environment",
    "bench_summary",
    "latest_large_vocab",
    "large_vocab_summary",
    "large_vocab_runs",
    "large_vocab_across_runs",
    "semi_supervised",
    "blocks",
    "sync_readme",
    "performance_page",
]


def _full_runs(
    paths: Iterable[Path], keep: Callable[[dict[str, Any]], bool], what: str
) -> list[tuple[Path, dict[str, Any]]]:
    """The full (not ``--quick``) timed runs among ``paths`` that ``keep`` accepts, oldest
    first."""
    runs = []
    for path in paths:
        data = json.loads(path.read_text())
        if "environment" in data and not data.get("quick") and keep(data):
            runs.append((data["environment"]["date_utc"], str(path), path, data))
    if not runs:
        raise FileNotFoundError(f"no full benchmark run {what} in {RESULTS}")
    return [(path, data) for _, _, path, data in sorted(runs, key=lambda r: r[:2])]


def _newest_run(
    paths: Iterable[Path], keep: Callable[[dict[str, Any]], bool], what: str
) -> tuple[Path, dict[str, Any]]:
    """The newest full (not ``--quick``) timed run among ``paths`` that ``keep`` accepts."""
    return _full_runs(paths, keep, what)[-1]


def latest_bench() -> tuple[Path, dict[str, Any]]:
    """The newest full (not ``--quick``) timed run in ``bench/results``."""
    return _newest_run(RESULTS.glob("*.json"), lambda data: True, "(*.json)")


def _ms(x: float) -> str:
    return f"{x:.3g}" if x < 10 else f"{x:.1f}"


def _subject(case: dict[str, Any]) -> str:
    """The contender a case is about: jaxloss (or jaxloss+contract against plain jaxloss)."""
    names = [n for n in case["contenders"] if n != case["baseline"]]
    return next((n for n in names if n.startswith("jaxloss")), names[0])


def bench_environment(path: Path, results: dict[str, Any]) -> str:
    """One paragraph: where and with what the run was measured."""
    env, bw = results["environment"], results["bandwidth"]
    load = ", ".join(f"{v:.1f}" for v in env["load_average"])
    device = (
        f"a {env['cpu_count']}-core {env['cpu']} CPU (no GPU: every number is XLA:CPU)"
        if env["platform"] == "cpu"
        else f"{env['device_count']} × {env['device_kind']}"
    )
    text = (
        f"Committed results: `bench/results/{path.stem}.md` (+ `.json`, `.png`), measured "
        f"{env['date_utc']} UTC on {device}, load average {load} at the start; Python "
        f"{env['python']}, jax {env['jax']}, jaxlib {env['jaxlib']}, optax {env['optax']}, "
        f"torch {env['torch'] or 'not installed'}; "
        f"`GLIBC_TUNABLES={env['GLIBC_TUNABLES'] or '(unset)'}`"
    )
    if bw:
        text += (
            f"; measured bandwidth {bw['read_gbs']:.1f} GB/s read, {bw['read_write_gbs']:.1f} "
            "GB/s read+write into a fresh buffer"
        )
    return text + "."


def bench_summary(results: dict[str, Any]) -> str:
    """The summary table: each case's jaxloss time and its speedups over the baseline."""
    lines = [
        "| case | baseline | jaxloss ms | speedup (wall) | speedup (CPU time) "
        "| % of two-pass limit |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for case in results["cases"]:
        if case.get("error") or not case["contenders"]:
            lines.append(f"| {case['name']} | {case['baseline']} | failed | | | |")
            continue
        c = case["contenders"][_subject(case)]
        frac = c.get("fraction_of_two_pass_limit")
        limit = f"{100 * frac:.0f}%" if frac else "–"
        lines.append(
            f"| {case['name']} | {case['baseline']} | {_ms(c['median_ms'])} | "
            f"{c['speedup_vs_baseline']:.2f}× | {c['cpu_speedup_vs_baseline']:.2f}× | {limit} |"
        )
    return "\n".join(lines)


def _time_per_naive(contender: dict[str, Any]) -> list[str]:
    """A large_vocab contender's time / naive, wall and CPU: its recorded speedups inverted."""
    return [
        f"{1 / contender[key]:.2f}×" for key in ("speedup_vs_baseline", "cpu_speedup_vs_baseline")
    ]


def _has_large_vocab(data: dict[str, Any]) -> bool:
    return any(c.get("family") == "large_vocab" for c in data.get("cases", []))


def latest_large_vocab() -> tuple[Path, dict[str, Any]]:
    """The newest full run under ``bench/results`` (any depth) with ``large_vocab`` cases."""
    return _newest_run(RESULTS.rglob("*.json"), _has_large_vocab, "with the large_vocab family")


def large_vocab_runs() -> list[tuple[Path, dict[str, Any]]]:
    """Every committed full run with ``large_vocab`` cases, oldest first."""
    return _full_runs(RESULTS.rglob("*.json"), _has_large_vocab, "with the large_vocab family")


def large_vocab_across_runs(runs: list[tuple[Path, dict[str, Any]]]) -> str:
    """The fused modes' time / naive in every committed run, one row per run and vocabulary
    (machines differ, and so do the ratios; each file measured the code of its commit)."""
    lines = [
        "Every committed `large_vocab` run (time / naive, wall and CPU; each results file "
        "measured the code of its commit). **load** is the machine's 1, 5 and 15-minute load "
        "average when the run started (on 2 cores, near 1 or more: other work ran in the "
        "minutes before) and **r+w** the read+write bandwidth the run measured:",
        "",
        "| results file | CPU | load | r+w GB/s | V | store (wall) | store (CPU) "
        "| recompute (wall) | recompute (CPU) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path, results in runs:
        env = results["environment"]
        load = "/".join(f"{x:.1f}" for x in env.get("load_average") or []) or "–"
        bandwidth = (results.get("bandwidth") or {}).get("read_write_gbs")
        rw = "–" if bandwidth is None else f"{bandwidth:.1f}"
        for case in results["cases"]:
            if case.get("family") != "large_vocab" or case.get("error"):
                continue
            cells = []
            for name in ("store", "recompute"):
                c = case["contenders"].get(name)
                cells += ["–", "–"] if c is None else _time_per_naive(c)
            lines.append(
                f"| `{path.relative_to(RESULTS)}` | {env['cpu_count']}-core {env['cpu']} "
                f"| {load} | {rw} | {case['vocab']} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def _tokens_and_width(results: dict[str, Any]) -> str:
    """``N = …, D = …`` of the large_vocab cases, read from their names."""
    names = {c["name"] for c in results["cases"] if c.get("family") == "large_vocab"}
    shapes = sorted({m.group(0) for n in names if (m := re.search(r"N=\d+ D=\d+", n))})
    return ", ".join(s.replace("=", " = ").replace(" D", ", D") for s in shapes)


def large_vocab_summary(path: Path, results: dict[str, Any]) -> str:
    """The fused loss against the naive step: temporary memory and time, per vocabulary."""
    env = results["environment"]
    lines = [
        f"Measured by `python -m bench --filter large_vocab` ("
        f"`{path.relative_to(ROOT).with_suffix('.md')}`, {env['date_utc']} UTC, "
        f"{env['cpu_count']}-core {env['cpu']} CPU, float32): value + gradients with respect to "
        f"hidden and weight of {_tokens_and_width(results)}; temporary memory from the compiled "
        "`memory_analysis()`; time as the median over interleaved rounds of the naive step's "
        "time over the contender's, inverted (contender / naive: ≤ 1.05× is within 5%).",
        "",
        "| V | contender | rounds | temp MB | memory, naive / contender "
        "| time / naive (wall) | time / naive (CPU) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in results["cases"]:
        if case.get("family") != "large_vocab" or case.get("error"):
            continue
        base = case["contenders"][case["baseline"]]["memory"]["temp_bytes"]
        for name, c in case["contenders"].items():
            temp = c["memory"]["temp_bytes"]
            ratio = "–" if name == case["baseline"] else f"{base / temp:.1f}×"
            wall, cpu = _time_per_naive(c)
            lines.append(
                f"| {case['vocab']} | {name} | {c['rounds']} | {temp / 1e6:.1f} | {ratio} | "
                f"{wall} | {cpu} |"
            )
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class SemiSupervised:
    """The parts of ``semi_supervised_digits.md`` that prose quotes."""

    protocol: str
    table: str
    timing: str


def semi_supervised(path: Path = SEMI) -> SemiSupervised:
    """Parse the few-label digits results file (its format is the example's ``table()``)."""
    text = path.read_text()
    protocol = re.search(r"^Protocol: .*$", text, re.M)
    table = re.search(r"^\| method \|.*?(?=\n\n)", text, re.S | re.M)
    timing = re.search(r"^Wall time of the whole benchmark: .*$", text, re.M)
    if not (protocol and table and timing):
        raise ValueError(f"{path}: protocol line, results table or timing line not found")
    return SemiSupervised(protocol.group(0), table.group(0), timing.group(0))


def blocks() -> dict[str, str]:
    """The generated README blocks, by name."""
    path, results = latest_bench()
    vocab_path, vocab_results = latest_large_vocab()
    semi = semi_supervised()
    return {
        "bench-environment": bench_environment(path, results),
        "bench-summary": bench_summary(results),
        "large-vocab-summary": large_vocab_summary(vocab_path, vocab_results),
        "large-vocab-runs": large_vocab_across_runs(large_vocab_runs()),
        "semi-supervised-table": semi.table,
        "semi-supervised-timing": semi.timing,
    }


def sync_readme(text: str, generated: dict[str, str]) -> tuple[str, list[str]]:
    """``text`` with every generated block replaced; also the names of blocks that changed."""
    changed: list[str] = []
    seen: set[str] = set()

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        seen.add(name)
        if name not in generated:
            raise KeyError(f"README block {name!r} has no generator (known: {sorted(generated)})")
        body = generated[name].rstrip("\n") + "\n"
        if body != m.group("body"):
            changed.append(name)
        return m.group(1) + body + m.group(4)

    out = BLOCK.sub(sub, text)
    missing = sorted(set(generated) - seen)
    if missing:
        raise KeyError(f"README has no block for {missing}")
    return out, changed


@dataclasses.dataclass(frozen=True)
class GeneratedPage:
    markdown: str
    images: list[tuple[Path, str]]


def performance_page() -> GeneratedPage:
    """``performance.md``: how it is measured, the summary, the chart and every table."""
    path, results = latest_bench()
    method = (ROOT / "bench" / "README.md").read_text()
    method = re.sub(r"^# .*\n", "", method, count=1)
    method = re.sub(r"^(#+) ", r"#\1 ", method, flags=re.M)  # one level below the page's
    full = path.with_suffix(".md").read_text()
    full = re.sub(r"^# .*\n", "", full, count=1)
    full = re.sub(r"^(#+) ", r"##\1 ", full, flags=re.M)
    images = []
    chart = ""
    if path.with_suffix(".png").exists():
        images.append((path.with_suffix(".png"), f"performance/{path.stem}.png"))
        alt = "Speedups of every contender over each case's baseline"
        chart = f"![{alt}](performance/{path.stem}.png)\n"
    semi = semi_supervised()
    vocab_path, vocab_results = latest_large_vocab()
    md = "\n".join(
        [
            "# Performance",
            "",
            "Generated at build time from the newest committed run in `bench/results/` "
            f"(`{path.name}`) and `bench/results/{SEMI.name}`; "
            "`make bench ARGS=--write-results` writes new ones.",
            "",
            bench_environment(path, results),
            "",
            "## Summary",
            "",
            "Speedup = median over interleaved rounds of *baseline time / jaxloss time* "
            "(> 1: jaxloss is faster). The contract rows compare jaxloss with class weights, "
            "weights and a mask against the same call without them.",
            "",
            bench_summary(results),
            "",
            chart,
            "## Large vocabularies (memory and time)",
            "",
            large_vocab_summary(vocab_path, vocab_results),
            "",
            large_vocab_across_runs(large_vocab_runs()),
            "",
            "## Few-label digits (accuracy)",
            "",
            semi.protocol,
            "",
            semi.table,
            "",
            semi.timing,
            "",
            "## How it is measured",
            "",
            method,
            "",
            "## Every case",
            "",
            full,
        ]
    )
    return GeneratedPage(md, images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the README's generated blocks.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a block differs")
    args = parser.parse_args(argv)
    text = README.read_text()
    new, changed = sync_readme(text, blocks())
    if args.check:
        if changed:
            print(
                f"README.md blocks out of date: {', '.join(changed)}; run python -m tools.generated"
            )
            return 1
        print("README.md generated blocks are up to date")
        return 0
    if changed:
        README.write_text(new)
        print(f"rewrote README.md blocks: {', '.join(changed)}")
    else:
        print("README.md generated blocks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
