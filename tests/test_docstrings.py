"""Every public name of purenn and tinyjax carries a runnable example (run by `make doctest`)."""

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

import pytest

import purenn
import tinyjax

PACKAGES = [purenn, tinyjax]

# Every public module of the packages, by qualified name (``purenn.layers``, ``tinyjax.core``).
MODULES = [
    f"{package.__name__}.{module.name}"
    for package in PACKAGES
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name)
    if not module.name.startswith("_")
]


def public_names() -> Iterator[tuple[str, object]]:
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            defined_here = getattr(obj, "__module__", None) == module.__name__
            is_api = inspect.isfunction(obj) or inspect.isclass(obj)
            if defined_here and is_api and not name.startswith("_"):
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize(("name", "obj"), list(public_names()), ids=lambda v: str(v))
def test_public_name_has_a_doctest_example(name, obj):
    assert ">>>" in (inspect.getdoc(obj) or ""), f"{name} has no >>> example"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_the_package_docstring_has_an_example(package):
    assert ">>>" in package.__doc__
