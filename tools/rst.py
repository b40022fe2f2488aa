"""Docstrings as Markdown: the reStructuredText/Google subset jaxloss's docstrings use.

jaxloss writes its docstrings for ``help()`` and doctest: ``.. math::`` directives, ``::``
literal blocks, ``>>>`` examples, ``Args:``-style sections with 2-space items (several names may
share one item: ``weights, where: the contract.``), simple ``=====`` tables and the roles
``:func:``, ``:class:``, ``:meth:``, ``:mod:``, ``:data:`` and ``:math:``. The site renders
Markdown, so :func:`to_markdown` converts that subset:

* ``.. math::`` blocks become ``$$`` blocks and ``:math:`x``` inline ``\\(x\\)`` (arithmatex; the
  site hook turns both into MathML at build time);
* ``>>>`` examples and ``::`` literal blocks become fenced code (``pycon`` / ``python``);
* sections become a bold title and, for argument sections, a bullet per item;
* roles naming a public jaxloss object become cross-references (``resolve`` maps a name to the
  site identifier), everything else becomes code.

Anything else passes through unchanged (RST and Markdown agree on ``inline code``, ``*``,
``**`` and ``-`` lists).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable

__all__ = ["to_markdown", "first_line"]

Resolver = Callable[[str, str], str | None]

ITEM_SECTIONS = {"Args", "Arguments", "Parameters", "Attributes", "Raises", "Fields"}
TEXT_SECTIONS = {
    "Returns",
    "Return",
    "Yields",
    "Shapes",
    "Shape",
    "Example",
    "Examples",
    "Note",
    "Notes",
    "Warning",
    "References",
    "See Also",
}
SECTION = re.compile(r"^(\s*)(" + "|".join(sorted(ITEM_SECTIONS | TEXT_SECTIONS)) + r"):\s*$")
TABLE_BORDER = re.compile(r"^\s*=+( +=+)+\s*$")
ROLE = re.compile(r":(func|class|meth|mod|data|attr|obj|math):`([^`]+)`")
LABEL = re.compile(r"^(Edges|Shapes|Note|Notes|Raises|Returns|Warning):(\s)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _no_resolve(kind: str, name: str) -> str | None:
    return None


def first_line(doc: str, resolve: Resolver = _no_resolve) -> str:
    """The docstring's summary (first paragraph, one line) as inline Markdown."""
    para = doc.strip().split("\n\n", 1)[0]
    return _inline(" ".join(line.strip() for line in para.splitlines()), resolve)


def _inline(text: str, resolve: Resolver) -> str:
    """Roles to cross-references, code or inline math."""

    def role(m: re.Match[str]) -> str:
        kind, target = m.group(1), m.group(2)
        if kind == "math":
            return "\\(" + target + "\\)"
        shown = target.lstrip("~.")
        ident = resolve(kind, shown)
        label = shown.rsplit(".", 1)[-1] if target.startswith("~") else shown
        return f"[`{label}`][{ident}]" if ident else f"`{label}`"

    return ROLE.sub(role, text)


def _table(lines: list[str]) -> list[str]:
    """A simple RST table (``===`` borders) as a Markdown table."""
    border = lines[0]
    starts = [m.start() for m in re.finditer(r"=+", border)]
    rows: list[list[str]] = []
    header: list[str] | None = None
    for line in lines[1:]:
        if TABLE_BORDER.match(line):
            if header is None and rows:
                header = rows.pop()
            continue
        if not line.strip():
            continue
        cells = []
        for k, s in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else None
            cells.append(line[s:end].strip() if len(line) > s else "")
        if rows and not cells[0]:  # continuation of the previous row
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    if header is None:
        header = [""] * len(starts)

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return ["", fmt(header), "|" + " --- |" * len(starts), *map(fmt, rows), ""]


def _block(lines: list[str], i: int, base: int) -> tuple[list[str], int]:
    """Lines from ``i`` that are blank or indented deeper than ``base``; trailing blanks dropped."""
    block = []
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
        block.append(lines[i])
        i += 1
    while block and not block[-1].strip():
        block.pop()
        i -= 1
    return block, i


def _items(block: list[str], resolve: Resolver) -> list[str]:
    """An ``Args:``-style block as Markdown bullets: ``- `a`, `b`: description``."""
    body = textwrap.dedent("\n".join(block)).splitlines()
    items: list[tuple[str, list[str]]] = []
    for line in body:
        m = re.match(r"^(\S[^:]*?):(?:\s+(.*))?$", line)
        if m and _indent(line) == 0 and not line.startswith((">>>", "...")):
            items.append((m.group(1), [m.group(2) or ""]))
        elif items:
            items[-1][1].append(line)
        else:
            items.append(("", [line]))
    out = [""]
    for names, desc in items:
        body_text = "\n".join([desc[0], textwrap.dedent("\n".join(desc[1:]))]).rstrip()
        text = to_markdown(body_text, resolve).strip("\n").splitlines()
        head = ", ".join(f"`{n.strip()}`" for n in names.split(",")) if names else ""
        lead = f"- {head}: " if head else "- "
        out.append(lead + (text[0] if text else ""))
        out += [("    " + t) if t.strip() else "" for t in text[1:]]
    out.append("")
    return out


def to_markdown(doc: str, resolve: Resolver = _no_resolve) -> str:
    """Convert a (cleaned, dedented) docstring to Markdown; see the module docstring."""
    lines = doc.expandtabs().splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        ind = _indent(line)
        pad = " " * ind
        stripped = line.strip()
        if stripped.startswith(".. math::"):
            first = stripped[len(".. math::") :].strip()
            block, i = _block(lines, i + 1, ind)
            tex = textwrap.dedent("\n".join(block)).strip()
            tex = "\n".join(t for t in [first, tex] if t)
            out += ["", pad + "$$", *(pad + t for t in tex.splitlines()), pad + "$$", ""]
            continue
        if stripped.startswith(".. "):  # another directive: keep its content as text
            block, i = _block(lines, i + 1, ind)
            out += ["", *block, ""]
            continue
        if stripped.startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][ind:])
                i += 1
            out += ["", pad + "```pycon", *(pad + b for b in block), pad + "```", ""]
            continue
        if TABLE_BORDER.match(line):
            j = i + 1
            borders = 1
            while j < len(lines) and borders < 3:
                if TABLE_BORDER.match(lines[j]):
                    borders += 1
                j += 1
            table = [
                _inline(t, resolve) for t in textwrap.dedent("\n".join(lines[i:j])).split("\n")
            ]
            out += _table(table)
            i = j
            continue
        m = SECTION.match(line)
        if m and i + 1 < len(lines) and _indent(lines[i + 1]) > ind:
            title = m.group(2)
            block, i = _block(lines, i + 1, ind)
            out += ["", f"{pad}**{title}**"]
            if title in ITEM_SECTIONS:
                out += [pad + t if t else t for t in _items(block, resolve)]
            else:
                text = to_markdown(textwrap.dedent("\n".join(block)), resolve)
                out += ["", *(pad + t if t else t for t in text.splitlines()), ""]
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            text = line.rstrip()[:-2].rstrip()
            out.append(_inline(text + (":" if text.strip() else ""), resolve))
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block, i = _block(lines, j, ind)
            code = textwrap.dedent("\n".join(block)).splitlines()
            out += ["", pad + "```python", *(pad + c for c in code), pad + "```", ""]
            continue
        if re.match(r"^\s*([-*]|\d+\.) ", line) and out and out[-1].strip():
            prev = out[-1].lstrip()
            if not re.match(r"^([-*]|\d+\.) ", prev) and _indent(out[-1]) <= ind:
                out.append("")
        out.append(LABEL.sub(r"**\1:**\2", _inline(line, resolve)))
        i += 1
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
