"""Every public name of purenn carries a runnable example (run by `make doctest`)."""

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

import pytest

import purenn

MODULES = sorted(
    module.name
    for module in pkgutil.iter_modules(purenn.__path__)
    if not module.name.startswith("_")
)


def public_names() -> Iterator[tuple[str, object]]:
    for module_name in MODULES:
        module = importlib.import_module(f"purenn.{module_name}")
        for name, obj in vars(module).items():
            defined_here = getattr(obj, "__module__", None) == module.__name__
            is_api = inspect.isfunction(obj) or inspect.isclass(obj)
            if defined_here and is_api and not name.startswith("_"):
                yield f"purenn.{module_name}.{name}", obj


@pytest.mark.parametrize(("name", "obj"), list(public_names()), ids=lambda v: str(v))
def test_public_name_has_a_doctest_example(name, obj):
    assert ">>>" in (inspect.getdoc(obj) or ""), f"{name} has no >>> example"


def test_the_package_docstring_has_an_example():
    assert ">>>" in purenn.__doc__
