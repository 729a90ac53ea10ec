"""smscore.compiled: a module comes from its Cython build only when the build was made from its
source as it is now (no compiling here: tests/integration/test_compiled_build.py builds)."""

from __future__ import annotations

import importlib.machinery
import sys

import pytest

from smscore import compiled
from smscore.compiled import CompiledFinder, compiled_name


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``cmpkg`` with a module ``m`` on sys.path, and an empty folder for builds."""
    root = tmp_path / "src"
    (root / "cmpkg").mkdir(parents=True)
    (root / "cmpkg" / "__init__.py").write_text("")
    (root / "cmpkg" / "m.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(root))
    builds = tmp_path / "builds"
    builds.mkdir()
    return root / "cmpkg", builds


def built_for(builds, source: bytes):
    path = builds / compiled_name("cmpkg.m", source)
    path.write_bytes(b"not really a shared object: find_spec does not load it")
    return path


def test_the_name_of_a_build_changes_with_the_source_and_with_how_it_is_compiled(monkeypatch):
    first = compiled_name("a.b", b"x = 1\n")
    assert first.startswith("a.b-") and first.endswith(importlib.machinery.EXTENSION_SUFFIXES[0])
    assert compiled_name("a.b", b"x = 1\n") == first
    assert compiled_name("a.b", b"x = 2\n") != first
    assert compiled_name("a.c", b"x = 1\n") != first
    monkeypatch.setattr(compiled, "BUILD_KEY", b"another compiler\n")
    assert compiled_name("a.b", b"x = 1\n") != first


def test_a_module_with_a_build_of_its_source_is_found_there(package):
    folder, builds = package
    path = built_for(builds, (folder / "m.py").read_bytes())
    finder = CompiledFinder(builds, ["cmpkg.m"])
    spec = finder.find_spec("cmpkg.m", [str(folder)])
    assert spec.origin == str(path)
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
    assert finder.loaded == ["cmpkg.m"]


def test_an_edited_module_runs_as_source_until_it_is_built_again(package):
    folder, builds = package
    built_for(builds, (folder / "m.py").read_bytes())
    (folder / "m.py").write_text("VALUE = 2\n")
    finder = CompiledFinder(builds, ["cmpkg.m"])
    assert finder.find_spec("cmpkg.m", [str(folder)]) is None
    assert finder.loaded == []


def test_modules_not_listed_and_modules_without_a_build_are_left_to_python(package):
    folder, builds = package
    assert CompiledFinder(builds, ["cmpkg.m"]).find_spec("cmpkg.m", [str(folder)]) is None
    built_for(builds, (folder / "m.py").read_bytes())
    assert CompiledFinder(builds, ["cmpkg.other"]).find_spec("cmpkg.m", [str(folder)]) is None
    assert CompiledFinder(builds, ["cmpkg.m"]).find_spec("json", None) is None


@pytest.fixture
def no_finder(monkeypatch):
    """install() as on a process's first import of smscore, sys.meta_path restored afterwards."""
    monkeypatch.setattr(compiled, "_finder", None)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))


def test_install_puts_the_finder_first_once(no_finder, package, monkeypatch):
    _, builds = package
    monkeypatch.delenv("SMSGW_COMPILED", raising=False)
    finder = compiled.install(builds, ["cmpkg.m"])
    assert sys.meta_path[0] is finder
    assert compiled.install(builds, ["cmpkg.m"]) is finder
    assert sys.meta_path.count(finder) == 1


@pytest.mark.parametrize("why", ["SMSGW_COMPILED=0", "no build folder"])
def test_install_does_nothing_when_turned_off_or_nothing_was_built(no_finder, package, monkeypatch, why):
    _, builds = package
    if why == "SMSGW_COMPILED=0":
        monkeypatch.setenv("SMSGW_COMPILED", "0")
    else:
        monkeypatch.delenv("SMSGW_COMPILED", raising=False)
        builds = builds / "missing"
    before = list(sys.meta_path)
    assert compiled.install(builds, ["cmpkg.m"]) is None
    assert sys.meta_path == before
    assert compiled.loaded() == []


def test_every_module_listed_exists_and_none_runs_coroutines_or_finds_files_beside_itself():
    root = compiled._root()
    for module in compiled.MODULES:
        text = compiled._source(root, module).read_text()
        for word in ("async def", "inlineCallbacks", "__file__"):
            assert word not in text, f"{module} uses {word}: Cython's build of it would differ"
