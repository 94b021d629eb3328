"""Every public name of purenn and tinyjax carries an example, and every example runs.

`make doctest` runs the same examples from the API reference pages; running them here too
means `pytest` alone proves them.
"""

import doctest
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


def _is_api(obj: object) -> bool:
    return inspect.isfunction(obj) or inspect.isclass(obj)


def public_names() -> Iterator[tuple[str, object]]:
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            defined_here = getattr(obj, "__module__", None) == module.__name__
            if defined_here and _is_api(obj) and not name.startswith("_"):
                yield f"{module.__name__}.{name}", obj
    # Names a package re-exports from a private module of its own (purenn._transform) are
    # public only through the package, so they are checked under the package's name.
    for package in PACKAGES:
        for name in getattr(package, "__all__", []):
            obj = getattr(package, name)
            home = getattr(obj, "__module__", "") or ""
            private_home = home.startswith(f"{package.__name__}._")
            if _is_api(obj) and private_home:
                yield f"{package.__name__}.{name}", obj


# Named by the public name alone: an object's repr holds its address, which differs between
# the processes that collect the tests (pytest -n).
@pytest.mark.parametrize(
    ("name", "obj"), [pytest.param(name, obj, id=name) for name, obj in public_names()]
)
def test_public_name_has_a_doctest_example_that_passes(name, obj):
    module = inspect.getmodule(obj)
    # Only the object's own docstring: its methods are public names of their own class page.
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, module=module)
    examples = [example for test in tests for example in test.examples]
    assert examples, f"{name} has no >>> example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in tests:
        test.globs = dict(vars(module))
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_the_package_docstring_has_an_example(package):
    assert ">>>" in package.__doc__


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_no_module_shares_its_name_with_a_function(package):
    # `import purenn.transform as t` must not hand back a function instead of the module.
    clashes = [
        module.name
        for module in pkgutil.iter_modules(package.__path__)
        if hasattr(package, module.name) and not inspect.ismodule(getattr(package, module.name))
    ]
    assert clashes == []
