"""mkdocs hooks: generated pages (API reference, gallery, performance) and math as MathML.

Registered in ``mkdocs.yml`` (``hooks:``). Nothing here needs the network:

* ``on_config`` puts the generated pages into the navigation where ``mkdocs.yml`` names the
  placeholders ``api/``, ``gallery/`` and ``performance.md``;
* ``on_files`` adds the generated pages (they are never written into ``docs/``) and the
  committed images they show;
* ``on_page_content`` converts the TeX that ``pymdownx.arithmatex`` marked (``$$ … $$``,
  ``\\( … \\)``) to MathML with latex2mathml, so pages need no JavaScript and no CDN; a formula
  it cannot convert is a build warning (an error under ``--strict``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mkdocs.structure.files import File, Files  # noqa: E402

from tools import api, gallery, generated, mathml  # noqa: E402

log = logging.getLogger("mkdocs.plugins.jaxloss")


def _nav_pages() -> dict[str, list[Any]]:
    return {
        "api/": [{"Overview": "api/index.md"}] + [{page.title: page.path} for page in api.pages()],
        "gallery/": [{"Overview": "gallery/index.md"}]
        + [{ex.title: ex.page} for ex in gallery.examples()],
    }


def _expand(nav: Any, generated_nav: dict[str, list[Any]]) -> Any:
    if isinstance(nav, list):
        return [_expand(item, generated_nav) for item in nav]
    if isinstance(nav, dict):
        return {k: _expand(v, generated_nav) for k, v in nav.items()}
    if isinstance(nav, str) and nav in generated_nav:
        return generated_nav[nav]
    return nav


def on_config(config: Any) -> Any:
    config["nav"] = _expand(config["nav"], _nav_pages())
    return config


def on_files(files: Files, config: Any) -> Files:
    def page(path: str, content: str) -> None:
        files.append(File.generated(config, path, content=content))

    page("api/index.md", api.index_markdown())
    for p in api.pages():
        page(p.path, api.page_markdown(p))
    page("gallery/index.md", gallery.index_markdown())
    for ex in gallery.examples():
        page(ex.page, gallery.page_markdown(ex))
    for src, dest in gallery.images():
        files.append(File.generated(config, dest, abs_src_path=str(src)))
    for name, source in (("contributing.md", "CONTRIBUTING.md"), ("changelog.md", "CHANGELOG.md")):
        page(name, (ROOT / source).read_text())
    perf = generated.performance_page()
    page("performance.md", perf.markdown)
    for src, dest in perf.images:
        files.append(File.generated(config, dest, abs_src_path=str(src)))
    return files


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return mathml.convert_html(html, where=page.file.src_uri, warn=log.warning)
