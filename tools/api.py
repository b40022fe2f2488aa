"""What the API reference holds: one page per module family, generated from ``__all__``.

The pages follow the package: every public module (``jaxloss.<name>``, subpackages such as
``jaxloss.compat.torch`` included, found by walking the package) with an ``__all__`` gets a
page listing each of its names; the private modules whose names make up the flat API
(``jaxloss._MODULES``: the contract in ``_reduction``, validation in ``_checks``) get one too. A
new module or a new name in an ``__all__`` appears without touching the docs;
``tests/test_docs.py`` checks that every public name and module has its entry.

Identifiers (the anchors cross-references point to) are what a user imports: the module path
(``jaxloss.regression.huber_loss``) for names of public modules, the flat path
(``jaxloss.reduce``) for names of private ones.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import pkgutil
from types import ModuleType

from tools.rst import first_line, to_markdown

__all__ = ["Page", "pages", "resolver", "page_markdown", "index_markdown", "identifier_map"]

# Titles and the reading order of the families; a module missing here is appended after them,
# titled by the first line of its docstring.
TITLES = {
    "_reduction": "The contract: reduce",
    "_checks": "Validation and checkify",
    "activations": "Softmax and activations",
    "classification": "Cross-entropies",
    "focal": "Focal losses",
    "cost_sensitive": "Cost-sensitive losses",
    "margin": "Margin losses",
    "divergences": "Divergences",
    "sparse": "Sparsemax and Fenchel–Young",
    "large_vocab": "Large vocabularies",
    "regression": "Regression",
    "segmentation": "Segmentation",
    "embedding": "Embeddings and contrastive",
    "ranking": "Ranking",
    "sequence": "Sequences (CTC)",
    "penalties": "Penalties",
    "weighting": "Class weights and sampling",
    "metrics": "Metrics",
    "clustering": "Clustering",
    "semi_supervised": "Semi-supervised",
    "dropout": "Dropout",
    "gradients": "Gradient tools",
}


@dataclasses.dataclass(frozen=True)
class Page:
    """One API page: a module and the names it documents."""

    module: str  # dotted path below jaxloss, e.g. "regression", "compat.torch", "_reduction"
    title: str
    names: tuple[str, ...]
    flat: bool  # names are documented under jaxloss.<name> (private module)

    @property
    def path(self) -> str:
        """The page's file in the site, e.g. ``api/regression.md``."""
        return "api/" + self.module.lstrip("_").replace(".", "/") + ".md"

    @property
    def full_module(self) -> str:
        return "jaxloss." + self.module

    def identifier(self, name: str) -> str:
        return f"jaxloss.{name}" if self.flat else f"{self.full_module}.{name}"


def _public_modules() -> list[str]:
    import jaxloss

    found = []
    for info in pkgutil.walk_packages(jaxloss.__path__, "jaxloss."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts):
            continue
        module = importlib.import_module(info.name)
        if getattr(module, "__all__", None):
            found.append(".".join(parts))
    return found


@functools.cache
def pages() -> tuple[Page, ...]:
    """Every API page, in reading order."""
    import jaxloss

    modules = [m for m in jaxloss._MODULES if m.startswith("_")] + _public_modules()
    order = {m: k for k, m in enumerate(TITLES)}
    modules.sort(key=lambda m: (order.get(m, len(order)), m))
    out = []
    for name in modules:
        module = importlib.import_module(f"jaxloss.{name}")
        title = TITLES.get(name) or first_line(inspect.getdoc(module) or name).rstrip(".")
        out.append(Page(name, title, tuple(module.__all__), flat=name.startswith("_")))
    return tuple(out)


@functools.cache
def identifier_map() -> dict[str, str]:
    """Short and dotted names → site identifiers, for cross-references in docstrings."""
    ids: dict[str, str] = {}
    for page in pages():
        ids[page.full_module] = page.full_module
        for name in page.names:
            ident = page.identifier(name)
            ids.setdefault(name, ident)  # a bare name means the flat-API object
            ids[f"jaxloss.{name}"] = ids.get(f"jaxloss.{name}", ident)
            ids[f"{page.full_module}.{name}"] = ident
            obj = getattr(importlib.import_module(page.full_module), name)
            if inspect.isclass(obj):  # methods and attributes: Class.member
                for member in vars(obj):
                    if not member.startswith("_"):
                        for key in (f"{name}.{member}", f"jaxloss.{name}.{member}"):
                            ids.setdefault(key, f"{ident}.{member}")
    return ids


def resolver(context: str | None = None):
    """A resolver for :func:`tools.rst.to_markdown`: role target → identifier or None.

    ``context`` is the identifier of the class whose docstring is converted, so that
    ``:meth:`zeros``` finds ``LossParts.zeros``.
    """
    ids = identifier_map()

    def resolve(kind: str, name: str) -> str | None:
        if context and f"{context.rsplit('.', 1)[-1]}.{name}" in ids:
            return ids[f"{context.rsplit('.', 1)[-1]}.{name}"]
        return ids.get(name)

    return resolve


def _module(page: Page) -> ModuleType:
    return importlib.import_module(page.full_module)


def page_markdown(page: Page) -> str:
    """The page: module docstring, a summary table, then each name rendered by mkdocstrings."""
    module = _module(page)
    resolve = resolver()
    lines = [
        f"# {page.title}",
        "",
        f"[](){{#{page.full_module}}}",
        f"`{page.full_module}` — every name below is also importable as `jaxloss.<name>`."
        if not page.module.startswith("_") and page.module.count(".") == 0
        else "Importable as `jaxloss.<name>`."
        if page.flat
        else f"`{page.full_module}`",
        "",
    ]
    doc = inspect.getdoc(module)
    if doc and not page.flat:
        lines += [to_markdown(doc, resolve), ""]
    lines += ["| name | what it is |", "| --- | --- |"]
    for name in page.names:
        obj = getattr(module, name)
        own = inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj)
        summary = first_line(inspect.getdoc(obj) or "", resolve) if own else "type alias"
        summary = summary.replace("|", r"\|")
        lines.append(f"| [`{name}`][{page.identifier(name)}] | {summary} |")
    lines.append("")
    for name in page.names:
        lines += [f"::: {page.identifier(name)}", ""]
    return "\n".join(lines)


def index_markdown() -> str:
    """The API overview: every page with its names."""
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings: one page per module, every public name with its",
        "signature, formula, shapes, contract arguments and a doctest (the same examples",
        "`make test` runs). Everything is importable from the top level: `import jaxloss as jl`.",
        "",
        "| page | module | names |",
        "| --- | --- | --- |",
    ]
    for page in pages():
        names = ", ".join(f"[`{n}`][{page.identifier(n)}]" for n in page.names)
        rel = page.path.removeprefix("api/")
        lines.append(f"| [{page.title}]({rel}) | `{page.full_module}` | {names} |")
    return "\n".join(lines) + "\n"
