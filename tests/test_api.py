"""The public API: every name in ``jaxloss.__all__`` is documented, typed and tested."""

from __future__ import annotations

import inspect
import pathlib
import re

import pytest

import jaxloss

TESTS = pathlib.Path(__file__).resolve().parent
NON_FUNCTIONS = {"Reduction", "AxisName"}  # type aliases
PUBLIC = [n for n in jaxloss.__all__ if n not in NON_FUNCTIONS]
FUNCTIONS = [n for n in PUBLIC if not inspect.isclass(getattr(jaxloss, n))]
CLASSES = [n for n in PUBLIC if inspect.isclass(getattr(jaxloss, n))]


def test_all_names_exist_and_are_unique():
    assert len(set(jaxloss.__all__)) == len(jaxloss.__all__)
    for name in jaxloss.__all__:
        assert hasattr(jaxloss, name), name


@pytest.mark.parametrize("name", FUNCTIONS)
def test_public_function_has_docstring_with_doctest(name):
    fn = getattr(jaxloss, name)
    doc = inspect.getdoc(fn) or ""
    assert len(doc.splitlines()) >= 3, f"{name} needs a real docstring"
    assert ">>>" in doc, f"{name}'s docstring needs a doctest"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_public_function_is_fully_annotated(name):
    fn = getattr(jaxloss, name)
    signature = inspect.signature(fn)
    missing = [
        p.name
        for p in signature.parameters.values()
        if p.annotation is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    assert not missing, f"{name}: parameters without type hints: {missing}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return type"


@pytest.mark.parametrize("name", CLASSES)
def test_public_class_is_documented(name):
    assert inspect.getdoc(getattr(jaxloss, name)), f"{name} needs a docstring"


def test_every_public_name_is_used_by_a_test_module():
    text = "\n".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_api.py")
    untested = [n for n in PUBLIC if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not untested, f"public names no test module exercises: {untested}"
