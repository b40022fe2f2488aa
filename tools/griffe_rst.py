"""A griffe extension: jaxloss's reStructuredText-flavoured docstrings as Markdown.

mkdocstrings renders each docstring with ``docstring_style: null`` (the whole text as
Markdown); this extension converts the text first (``tools.rst.to_markdown``), resolving
roles against the API pages' identifiers (``tools.api``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.api import resolver
from tools.rst import to_markdown


class RstDocstrings(griffe.Extension):
    """Convert every function's, class's and attribute's docstring once, when it is loaded."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.is_module or obj.docstring is None or obj.extra.get("jaxloss", {}).get("md"):
            return
        context = obj.path if obj.is_class else (obj.parent.path if obj.parent else None)
        if context and obj.parent is not None and not obj.parent.is_class and not obj.is_class:
            context = None
        obj.docstring.value = to_markdown(obj.docstring.value, resolver(context))
        obj.extra.setdefault("jaxloss", {})["md"] = True
