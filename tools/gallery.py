"""The example gallery: every ``examples/*.py`` with its printed output and its plots.

``python -m tools.gallery`` (``make gallery``) runs the examples from the repository root and
commits what they show under ``docs/_gallery/<example>/``: ``output.txt`` (standard output),
``run.json`` (the command, wall time, date, versions) and every PNG the run wrote into
``examples/output/``. The docs build reads those files (it never runs an example, so ``make
docs`` stays offline and fast); ``tests/test_docs.py`` fails when an example has no committed
output. A new example appears in the gallery by itself once ``make gallery`` has run it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools.rst import first_line, to_markdown

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
OUTPUT = EXAMPLES / "output"
GALLERY = ROOT / "docs" / "_gallery"

# Arguments the gallery runs an example with (default: none, the example's own default run).
ARGS: dict[str, list[str]] = {}

__all__ = ["Example", "examples", "images", "index_markdown", "page_markdown", "run"]


@dataclasses.dataclass(frozen=True)
class Example:
    name: str
    path: Path

    @property
    def doc(self) -> str:
        return ast.get_docstring(ast.parse(self.path.read_text())) or ""

    @property
    def title(self) -> str:
        return self.name.replace("_", " ")

    @property
    def summary(self) -> str:
        return first_line(self.doc).rstrip(".")

    @property
    def page(self) -> str:
        return f"gallery/{self.name}.md"

    @property
    def committed(self) -> Path:
        return GALLERY / self.name


@functools.cache
def examples() -> tuple[Example, ...]:
    return tuple(Example(p.stem, p) for p in sorted(EXAMPLES.glob("*.py")) if p.stem[0] != "_")


def images() -> list[tuple[Path, str]]:
    """Committed plots and where the site serves them."""
    return [
        (png, f"gallery/{ex.name}/{png.name}")
        for ex in examples()
        for png in sorted(ex.committed.glob("*.png"))
    ]


def index_markdown() -> str:
    lines = [
        "# Gallery",
        "",
        "Every script in `examples/`, with what it printed and drew when it last ran "
        "(`make gallery` reruns them and commits the output under `docs/_gallery/`). Run one "
        "yourself from the repository root: `python examples/<name>.py` (needs the "
        "`examples` extra); plots go to `examples/output/`.",
        "",
        "| example | what it shows | wall time |",
        "| --- | --- | ---: |",
    ]
    for ex in examples():
        meta = _meta(ex)
        secs = f"{meta['seconds']:.0f} s" if meta else "not run yet"
        lines.append(f"| [{ex.title}]({ex.name}.md) | {ex.summary} | {secs} |")
    return "\n".join(lines) + "\n"


def _meta(ex: Example) -> dict | None:
    path = ex.committed / "run.json"
    return json.loads(path.read_text()) if path.exists() else None


def page_markdown(ex: Example) -> str:
    meta = _meta(ex)
    lines = [f"# {ex.title}", "", f"`examples/{ex.name}.py`", "", to_markdown(ex.doc), ""]
    lines += ["## Output", ""]
    if meta is None:
        lines += ["Not run yet: `make gallery` runs it and commits its output.", ""]
    else:
        lines += [
            f"`{meta['command']}` — {meta['seconds']:.0f} s wall time on {meta['machine']}, "
            f"{meta['date_utc']} UTC, jax {meta['jax']}.",
            "",
            "```text",
            (ex.committed / "output.txt").read_text().rstrip("\n"),
            "```",
            "",
        ]
        for png in sorted(ex.committed.glob("*.png")):
            lines += [f"![{png.stem}]({ex.name}/{png.name})", ""]
    lines += [
        "## Source",
        "",
        "```python",
        ex.path.read_text().rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def run(ex: Example, python: str = sys.executable) -> float:
    """Run one example and commit its output; returns the wall time in seconds."""
    import jax

    command = [python, f"examples/{ex.name}.py", *ARGS.get(ex.name, [])]
    OUTPUT.mkdir(exist_ok=True)
    before = {p: p.stat().st_mtime_ns for p in OUTPUT.glob("*.png")}
    start = time.perf_counter()
    proc = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, MPLBACKEND="Agg"),
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{ex.name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    written = [p for p in OUTPUT.glob("*.png") if before.get(p) != p.stat().st_mtime_ns]
    if ex.committed.exists():
        shutil.rmtree(ex.committed)
    ex.committed.mkdir(parents=True)
    (ex.committed / "output.txt").write_text(proc.stdout)
    for png in written:
        shutil.copy2(png, ex.committed / png.name)
    meta = {
        "command": " ".join(["python", *command[1:]]),
        "seconds": round(seconds, 1),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "jax": jax.__version__,
        "images": sorted(p.name for p in written),
    }
    (ex.committed / "run.json").write_text(json.dumps(meta, indent=1) + "\n")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the examples and commit their output.")
    parser.add_argument("names", nargs="*", help="examples to run (default: all)")
    parser.add_argument("--missing", action="store_true", help="only those never run")
    args = parser.parse_args(argv)
    chosen = [ex for ex in examples() if not args.names or ex.name in args.names]
    if args.missing:
        chosen = [ex for ex in chosen if _meta(ex) is None]
    for ex in chosen:
        print(f"{ex.name} ...", flush=True)
        print(f"  {run(ex):.0f} s -> {ex.committed.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
