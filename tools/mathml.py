"""TeX to MathML at build time (latex2mathml): formulas that need no script and no CDN.

Browsers render MathML Core natively (Chromium ≥ 109, Firefox, Safari). A few macros that
latex2mathml does not know are rewritten first (``\\arg`` → ``\\operatorname{arg}``, ``\\_``
inside text); a formula that still leaves a TeX command in its output, or fails to convert, is
reported through ``warn`` so that ``mkdocs build --strict`` fails on it instead of shipping it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from latex2mathml.converter import convert

__all__ = ["convert_html", "tex_to_mathml"]

BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)
INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
TEXT_GROUP = re.compile(r"\\(text|mathrm|texttt|operatorname|mathit|mathbf)\{([^{}]*)\}")
REWRITES = [
    (re.compile(r"\\arg(?![a-zA-Z])"), r"\\operatorname{arg}"),
    (re.compile(r"\\operatorname\*"), r"\\operatorname"),
    (re.compile(r"\\(?:big|Big|bigg|Bigg)([lr])?(?![a-zA-Z])"), ""),
]


class MathError(ValueError):
    """latex2mathml could not convert a formula faithfully."""


def _prepare(tex: str) -> str:
    def unescape(m: re.Match[str]) -> str:
        return "\\" + m.group(1) + "{" + m.group(2).replace("\\_", "_") + "}"

    tex = TEXT_GROUP.sub(unescape, tex)
    for pattern, repl in REWRITES:
        tex = pattern.sub(repl, tex)
    return tex.strip()


def tex_to_mathml(tex: str, *, display: bool) -> str:
    """One formula as a ``<math>`` element; raises :class:`MathError` if TeX is left over."""
    try:
        out = convert(_prepare(tex), display="block" if display else "inline")
    except Exception as e:  # latex2mathml raises its own exception types
        raise MathError(f"{type(e).__name__}: {e}") from e
    text = html.unescape(re.sub(r"<[^>]*>", " ", out))
    left = re.findall(r"\\[a-zA-Z]+", text)
    if left:
        raise MathError(f"TeX left unconverted: {' '.join(sorted(set(left)))}")
    return out


def convert_html(page: str, *, where: str, warn: Callable[[str], None]) -> str:
    """Replace arithmatex's marked TeX in a page's HTML by MathML."""

    def sub(display: bool) -> Callable[[re.Match[str]], str]:
        def one(m: re.Match[str]) -> str:
            tex = html.unescape(m.group(1))
            try:
                return tex_to_mathml(tex, display=display)
            except MathError as e:
                warn(f"{where}: formula not converted to MathML ({e}): {tex.strip()[:120]}")
                return f"<code>{html.escape(tex)}</code>"

        return one

    return INLINE.sub(sub(False), BLOCK.sub(sub(True), page))
