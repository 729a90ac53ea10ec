"""smscore.compiled.build with the real Cython and C compiler (scripts/setup installs Cython: the
``compiled`` extra): a module built, imported from its build, edited, built again."""

from __future__ import annotations

import importlib
import sys

import pytest

from smscore import compiled
from smscore.compiled import CompiledFinder

pytest.importorskip("Cython", reason="Cython is installed by scripts/setup (pyproject's compiled extra)")

SOURCE = '''
def double(x):
    return 2 * x

class Thing:
    __slots__ = ("n",)
    def __init__(self, n):
        self.n = n
'''


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "src"
    (root / "cmbuild").mkdir(parents=True)
    (root / "cmbuild" / "__init__.py").write_text("")
    (root / "cmbuild" / "hot.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(root))
    finder = CompiledFinder(tmp_path / "builds", ["cmbuild.hot"])
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    yield root, tmp_path / "builds", finder
    for name in ("cmbuild.hot", "cmbuild"):
        sys.modules.pop(name, None)


def fresh_import():
    sys.modules.pop("cmbuild.hot", None)
    importlib.invalidate_caches()
    return importlib.import_module("cmbuild.hot")


def test_a_module_is_built_imported_from_its_build_and_built_again_once_edited(package):
    root, builds, finder = package
    said = []
    assert compiled.build(builds, ["cmbuild.hot"], root=root, log=said.append) == ["cmbuild.hot"]
    assert "building 1 module(s)" in said[0]
    first = sorted(p.name for p in builds.iterdir())
    assert len(first) == 1 and first[0].startswith("cmbuild.hot-")

    hot = fresh_import()
    assert hot.__file__ == str(builds / first[0])
    assert hot.double(21) == 42 and hot.Thing(3).n == 3
    assert type(hot.double).__name__ == "cython_function_or_method"  # compiled, not Python's function
    assert compiled.build(builds, ["cmbuild.hot"], root=root, log=said.append) == []  # nothing changed

    (root / "cmbuild" / "hot.py").write_text(SOURCE.replace("2 * x", "3 * x"))
    edited = fresh_import()
    assert edited.__file__ == str(root / "cmbuild" / "hot.py")  # the source, not the old build
    assert edited.double(2) == 6

    assert compiled.build(builds, ["cmbuild.hot"], root=root, log=said.append) == ["cmbuild.hot"]
    second = sorted(p.name for p in builds.iterdir())
    assert len(second) == 1 and second != first  # the old build was removed
    rebuilt = fresh_import()
    assert rebuilt.__file__ == str(builds / second[0]) and rebuilt.double(2) == 6
    assert finder.loaded == ["cmbuild.hot", "cmbuild.hot"]


def test_without_a_compiler_nothing_is_built_and_it_says_so(package, monkeypatch):
    root, builds, _ = package
    monkeypatch.setenv("CC", "/nonexistent/cc")
    said = []
    assert compiled.build(builds, ["cmbuild.hot"], root=root, log=said.append) == []
    assert "not built" in said[-1] and "Python sources" in said[-1]
    assert not builds.exists() or not any(builds.iterdir())
    assert fresh_import().__file__ == str(root / "cmbuild" / "hot.py")
