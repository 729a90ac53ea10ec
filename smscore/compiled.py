"""The hot modules compiled with Cython, where they were built for the source as it is.

Why: one message's path through the main worker runs some 500 Python calls, spread over the SMPP
codec, the store's changes, the pipeline and the policies; no single one is worth rewriting, and
CPython spends a good part of each on the interpreter's own work. The same sources compiled,
unchanged, by Cython cost the main worker 3-8 % less CPU a message and lists of 100 ran about 5 %
faster (docs/benchmarks.md, thirtieth session).

How, without a build step that could leave a stale module behind: ``build()`` (``scripts/setup``
runs it) compiles each module of ``MODULES`` into ``DIRECTORY``
(in the virtualenv: ``sys.prefix/smsgw-compiled``), under a name that carries a hash of the
source's bytes and of how it was compiled. ``install()`` (run when ``smscore`` is imported) puts a
finder first on ``sys.meta_path`` that loads a module from there only when a file of that name
exists for its source as it is now; otherwise, and for every other module, Python imports the
``.py`` as usual. An edited module is therefore never shadowed by an old build: it runs as source
until the next build. ``SMSGW_COMPILED=0`` turns the finder off (a debugger, a coverage run, or to
compare), and without Cython or a C compiler ``build()`` builds nothing and says so: the gateway
is the same program either way, the compiled one a little cheaper.

Tracebacks through a compiled module name its ``.py`` and line as usual (Cython keeps them), without
the local variables of those frames. A module that runs coroutines or ``inlineCallbacks`` is left
out (Twisted checks for Python's own generator and coroutine types), and so is one that finds files
beside itself.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["BUILD_KEY", "DIRECTORY", "MODULES", "CompiledFinder", "build", "compiled_name", "install", "loaded",
           "source_of", "status"]

#: Where the builds go: one folder per virtualenv (and so per interpreter).
DIRECTORY = Path(sys.prefix) / "smsgw-compiled"

#: How the modules are compiled, part of each build's name: a change here builds them all again.
BUILD_KEY = b"cython-3.3.2; language_level=3; annotation_typing=False\n"

#: The modules on a message's path, in the main worker and the API workers (profiles of lists of
#: 100 and of one message per request: docs/benchmarks.md).
MODULES = (
    "connectors.reactor",
    "connectors.http_client",
    "connectors.http_exchange",
    "connectors.http_push",
    "connectors.http_server",
    "connectors.smpp.addressing",
    "connectors.smpp.binds",
    "connectors.smpp.client",
    "connectors.smpp.codec",
    "connectors.smpp.inbound",
    "connectors.smpp.outgoing",
    "connectors.smpp.pacer",
    "connectors.smpp.pacing",
    "connectors.smpp.receipts",
    "connectors.smpp.session",
    "connectors.smpp.text",
    "connectors.smpp.times",
    "policies.blocks",
    "policies.callbacks",
    "policies.claims",
    "policies.learning",
    "policies.receipts",
    "policies.routing",
    "smscore.api.auth",
    "smscore.api.customer",
    "smscore.api.inputs",
    "smscore.api.render",
    "smscore.api.routes",
    "smscore.claiming",
    "smscore.metrics",
    "smscore.model",
    "smscore.operator_room",
    "smscore.pipeline",
    "smscore.push_claims",
    "smscore.queues",
    "smscore.routing",
    "smscore.store.accounts",
    "smscore.store.changes",
    "smscore.store.rows",
    "smscore.store.rules",
    "smscore.store.sql",
    "smscore.store.sqlite",
    "smscore.store.writer",
    "smscore.submission",
    "smscore.submit_outcomes",
    "smscore.transitions",
    "smscore.workers",
)


def compiled_name(module: str, source: bytes) -> str:
    """The file name of ``module``'s build from ``source``: the name, a hash, the extension suffix."""
    digest = hashlib.sha256(BUILD_KEY + source).hexdigest()[:24]
    return f"{module}-{digest}{importlib.machinery.EXTENSION_SUFFIXES[0]}"


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the build in ``directory`` of a module of ``modules`` made from its current source."""

    def __init__(self, directory: Path, modules) -> None:
        self.directory = directory
        self.modules = frozenset(modules)
        self.loaded: list[str] = []

    def find_spec(self, name, path, target=None):
        if name not in self.modules:
            return None
        source = importlib.machinery.PathFinder.find_spec(name, path)
        if source is None or not (source.origin or "").endswith(".py"):
            return None
        try:
            built = self.directory / compiled_name(name, Path(source.origin).read_bytes())
        except OSError:
            return None
        if not built.is_file():
            return None
        self.loaded.append(name)
        return importlib.util.spec_from_file_location(
            name, built, loader=importlib.machinery.ExtensionFileLoader(name, str(built)))


_finder: CompiledFinder | None = None


def install(directory: Path = DIRECTORY, modules=MODULES) -> CompiledFinder | None:
    """Put the finder first on ``sys.meta_path`` (once), unless ``SMSGW_COMPILED=0`` or there is no
    build at all. Modules imported before it stay as they were imported."""
    global _finder
    if _finder is None and os.environ.get("SMSGW_COMPILED", "1") != "0" and directory.is_dir():
        _finder = CompiledFinder(directory, modules)
        sys.meta_path.insert(0, _finder)
    return _finder


def loaded() -> list[str]:
    """The modules imported from a build so far (in this process)."""
    return list(_finder.loaded) if _finder is not None else []


def _root() -> Path:
    """The folder that holds smscore, connectors and policies."""
    return Path(__file__).resolve().parent.parent


def _source(root: Path, module: str) -> Path:
    return root / (module.replace(".", "/") + ".py")


def source_of(module: str) -> Path:
    """The ``.py`` file of ``module`` (of smscore, connectors or policies), compiled or not: a
    compiled module's ``__file__`` is its build."""
    return _source(_root(), module)


def status(directory: Path = DIRECTORY, modules=MODULES, root: Path | None = None) -> list[str]:
    """The modules of ``modules`` that have a build in ``directory`` for their current source."""
    root = root or _root()
    return [m for m in modules if (directory / compiled_name(m, _source(root, m).read_bytes())).is_file()]


def build(directory: Path = DIRECTORY, modules=MODULES, root: Path | None = None, jobs: int | None = None,
          log=print) -> list[str]:
    """Compile each module of ``modules`` (under ``root``) that has no build for its current source
    into ``directory``, and remove its older builds. Returns the modules built. Without Cython or a
    C compiler it builds nothing and says why (the gateway then runs its sources, as it always can)."""
    root = root or _root()
    wanted = {}
    for module in modules:
        source = _source(root, module)
        name = compiled_name(module, source.read_bytes())
        if not (directory / name).is_file():
            wanted[module] = (source, name)
    if not wanted:
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
    except ImportError as exc:
        log(f"smsgw compiled: not built ({exc.name} is not installed): the gateway runs its Python sources")
        return []
    jobs = jobs or os.cpu_count() or 1
    log(f"smsgw compiled: building {len(wanted)} module(s) with Cython into {directory}")
    with tempfile.TemporaryDirectory(prefix="smsgw-compiled-") as tmp:
        here = os.getcwd()
        os.chdir(root)  # relative paths: Cython names the .py files so in tracebacks
        try:
            extensions = cythonize(
                [Extension(module, [str(source.relative_to(root))], extra_compile_args=["-w"])
                 for module, (source, _) in wanted.items()],
                build_dir=os.path.join(tmp, "c"), nthreads=jobs, quiet=True,
                compiler_directives={"language_level": 3, "annotation_typing": False})
            dist = Distribution({"ext_modules": extensions, "script_name": "smscore/compiled.py"})
            command = dist.get_command_obj("build_ext")
            command.build_lib, command.build_temp = os.path.join(tmp, "lib"), os.path.join(tmp, "o")
            command.parallel = jobs
            command.ensure_finalized()
            command.run()
        except Exception as exc:  # noqa: BLE001 - no compiler, a Cython error: the sources run
            log(f"smsgw compiled: not built ({type(exc).__name__}: {exc}): the gateway runs its Python sources")
            return []
        finally:
            os.chdir(here)
        directory.mkdir(parents=True, exist_ok=True)
        built = []
        for module, (source, name) in wanted.items():
            if compiled_name(module, source.read_bytes()) != name:  # edited meanwhile: built next time
                continue
            for old in directory.glob(f"{module}-*"):
                old.unlink()
            shutil.move(command.get_ext_fullpath(module), directory / name)
            built.append(module)
    return built
