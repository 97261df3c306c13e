"""The package's layering (DESIGN.md, "Layering"), checked on the source with ``ast``.

core (``agent_forge/``) <- phases <- plugins, and models beside them. Every ``import x`` and
``from x import y`` counts, wherever it is (module top, inside a function, under
``TYPE_CHECKING``), relative ones resolved. Module names held in strings (the plugin loader's list
of built-ins) are not imports and are not checked.

Files map to their installed module names through ``[tool.setuptools] package-dir`` in
pyproject.toml (``models/`` is ``agent_forge.models``, and so on).
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]

CORE = "agent_forge"
MODELS = "agent_forge.models"
PHASES = "agent_forge.phases"
PLUGINS = "agent_forge.plugins"
COMMON = "agent_forge.phases.common"


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layer(module: str) -> str:
    """CORE, MODELS, PHASES or PLUGINS: the part of the package ``module`` belongs to."""
    for package in (MODELS, PHASES, PLUGINS):
        if within(module, package):
            return package
    return CORE


def phase_package(module: str) -> str | None:
    """``agent_forge.phases.cognate`` for ``agent_forge.phases.cognate.trainer``; None outside a phase."""
    parts = module.split(".")
    return ".".join(parts[:3]) if within(module, PHASES) and len(parts) >= 3 else None


@dataclass(frozen=True)
class Rule:
    words: str
    #: Whether the rule governs modules named like this.
    applies_to: Callable[[str], bool]
    #: (importer, imported) -> True when that import breaks the rule.
    forbids: Callable[[str, str], bool]


# --------------------------------------------------------------------------------------------
#  rule                                              importer            forbidden import
# --------------------------------------------------------------------------------------------
RULES: tuple[Rule, ...] = (
    Rule("the core never imports a phase or a plugin module (it finds them through hooks)",
         applies_to=lambda m: layer(m) == CORE,
         forbids=lambda m, t: within(t, PHASES) or within(t, PLUGINS)),
    Rule("agent_forge.models imports nothing else of the package (only agent_forge.models.*)",
         applies_to=lambda m: layer(m) == MODELS,
         forbids=lambda m, t: within(t, CORE) and not within(t, MODELS)),
    Rule("a phase never imports a plugin module (it asks the host for plugins by name)",
         applies_to=lambda m: layer(m) == PHASES,
         forbids=lambda m, t: within(t, PLUGINS)),
    Rule("a phase never imports another phase (shared code lives in agent_forge.phases.common)",
         applies_to=lambda m: phase_package(m) is not None,
         forbids=lambda m, t: phase_package(t) not in (None, phase_package(m), COMMON)),
)


# -- reading the source ----------------------------------------------------------------------
def package_dirs(root: Path = ROOT) -> dict[str, Path]:
    """Installed package name -> folder, from pyproject.toml."""
    data = tomllib.loads((root / "pyproject.toml").read_text())
    return {pkg: root / folder for pkg, folder in data["tool"]["setuptools"]["package-dir"].items()}


def source_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the installed package (dotted name -> file)."""
    dirs = package_dirs(root)
    modules: dict[str, Path] = {}
    for path in sorted(p for folder in dirs.values() for p in folder.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        # The innermost mapped folder that holds the file names it.
        pkg, folder = max(((k, d) for k, d in dirs.items() if path.is_relative_to(d)),
                          key=lambda kv: len(kv[1].parts))
        rel = path.relative_to(folder).with_suffix("").parts
        if rel[-1] == "__init__":
            rel = rel[:-1]
        modules[".".join((pkg, *rel))] = path
    return modules


def imported_names(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module name) for every import in ``source``; relative imports resolved.

    ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule).
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return sorted(set(found))


def check_source(module: str, source: str, where: str, is_package: bool = False) -> list[str]:
    """The layering violations of one module, as ``path:line: imports X — rule: ...``."""
    out: list[str] = []
    seen: set[tuple[int, str]] = set()
    for line, target in imported_names(module, source, is_package):
        for rule in RULES:
            if rule.applies_to(module) and rule.forbids(module, target):
                # One report per line and rule: ``from a import b`` names ``a`` when ``a`` breaks
                # the rule, and ``a.b`` only when ``a`` itself is allowed (names sort after ``a``).
                key = (line, rule.words)
                if key not in seen:
                    seen.add(key)
                    out.append(f"{where}:{line}: imports {target} — rule: {rule.words}")
    return out


def check_tree(root: Path = ROOT) -> list[str]:
    out: list[str] = []
    for module, path in source_modules(root).items():
        out += check_source(module, path.read_text(), str(path.relative_to(root)),
                            is_package=path.name == "__init__.py")
    return out


# -- the tests -------------------------------------------------------------------------------
def test_the_package_keeps_its_layering():
    violations = check_tree()
    if violations:
        pytest.fail("layering violations (DESIGN.md, Layering):\n" + "\n".join(violations), pytrace=False)


def test_every_part_of_the_package_is_scanned():
    modules = source_modules()
    for name in ("agent_forge", "agent_forge.plugin_host", "agent_forge.cli", "agent_forge.models",
                 "agent_forge.models.trm", "agent_forge.phases.cognate.trainer", "agent_forge.phases.common",
                 "agent_forge.phases.evomerge.phase", "agent_forge.plugins.callbacks.act"):
        assert name in modules, name
    assert modules["agent_forge.models.trm"] == ROOT / "models" / "trm.py"


def test_the_checker_catches_each_rule_and_allows_the_rest():
    src = (
        "import torch\n"                                                        # 1 fine everywhere
        "from agent_forge.phases.cognate.trainer import FitContext\n"           # 2
        "def f():\n"
        "    import agent_forge.plugins.datasets.sudoku\n"                       # 4 inside a function
        "from agent_forge import plugins\n"                                      # 5 a submodule by name
        "NAMES = ('agent_forge.plugins.architectures', 'agent_forge.phases')\n"  # 6 strings: not imports
    )
    core = check_source("agent_forge.cli", src, "agent_forge/cli.py")
    rule = RULES[0].words
    assert core == [
        f"agent_forge/cli.py:2: imports agent_forge.phases.cognate.trainer — rule: {rule}",
        f"agent_forge/cli.py:4: imports agent_forge.plugins.datasets.sudoku — rule: {rule}",
        f"agent_forge/cli.py:5: imports agent_forge.plugins — rule: {rule}",
    ]

    models = check_source("agent_forge.models.trm", (
        "from agent_forge.models.layers import Block\n"   # 1 fine
        "from .protocol import Carry\n"                    # 2 relative, inside models: fine
        "from ..config import StrictModel\n"               # 3 relative: agent_forge.config
        "from agent_forge.contracts import TaskSpec\n"     # 4
        "from agent_forge import hookimpl\n"               # 5 the core's package itself
    ), "models/trm.py")
    assert [v.split(": imports ")[0] for v in models] == ["models/trm.py:3", "models/trm.py:4", "models/trm.py:5"]
    assert "imports agent_forge.config — rule: agent_forge.models imports nothing else" in models[0]

    phase = check_source("agent_forge.phases.evomerge.phase", (
        "from agent_forge.phases.common.loading import load\n"   # 1 shared code: fine
        "from agent_forge.phases.evomerge import x\n"            # 2 its own phase: fine
        "from agent_forge.plugins.callbacks.ema import EMA\n"    # 3 a plugin
        "from ..cognate import trainer\n"                        # 4 another phase, relatively
        "from agent_forge.phases import cognate\n"               # 5 another phase, by name
        "from agent_forge.runner import Phase\n"                 # 6 the core: fine
    ), "phases/evomerge/phase.py")
    assert phase == [
        f"phases/evomerge/phase.py:3: imports agent_forge.plugins.callbacks.ema — rule: {RULES[2].words}",
        f"phases/evomerge/phase.py:4: imports agent_forge.phases.cognate — rule: {RULES[3].words}",
        f"phases/evomerge/phase.py:5: imports agent_forge.phases.cognate — rule: {RULES[3].words}",
    ]
    # Shared code imports no phase either; a package's own relative import resolves from itself.
    assert check_source("agent_forge.phases.common", "from ..cognate import state\n", "phases/common/__init__.py",
                        is_package=True)
    assert not check_source("agent_forge.phases.cognate", "from . import trainer\n", "phases/cognate/__init__.py",
                            is_package=True)
    # Plugins may import anything.
    assert not check_source("agent_forge.plugins.phases", "from agent_forge.phases.cognate.phase import C\n", "p.py")


def test_the_checker_reads_files_through_the_package_dir_mapping(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = { "agent_forge" = "agent_forge", "agent_forge.models" = "models" }\n')
    (tmp_path / "agent_forge").mkdir()
    (tmp_path / "agent_forge" / "__init__.py").write_text("")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "net.py").write_text("import os\n\n\ndef f():\n    from agent_forge import config\n")
    assert check_tree(tmp_path) == [
        f"models/net.py:5: imports agent_forge — rule: {RULES[1].words}",
    ]


# -- hook specs: each layer declares the hooks it calls ----------------------------------------
HOOKSPEC_RULE = ("no phase hook spec in the core: a hook only a phase calls is declared in that phase and added"
                 " with its PhaseSpec(hookspecs=...)")
#: A phase named in a core hook spec: a phase package (shared code in phases.common is not one).
PHASE_MENTION = re.compile(r"\bagent_forge\.phases\.(?!common\b)[a-z_]+|\bphases/(?!common/)[a-z_]+/")


def hookspecs_in(source: str) -> list[tuple[int, str, str]]:
    """(line, hook name, signature and docstring) of every ``@hookspec`` function in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and any(
                (isinstance(d, ast.Name) and d.id == "hookspec")
                or (isinstance(d, ast.Attribute) and d.attr == "hookspec")
                or (isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "hookspec")
                for d in node.decorator_list):
            text = ast.unparse(node.args) + " " + (ast.unparse(node.returns) if node.returns else "")
            found.append((node.lineno, node.name, text + " " + (ast.get_docstring(node) or "")))
    return found


def check_hookspecs(sources: dict[str, tuple[str, str]]) -> list[str]:
    """``{module: (source, where)}`` -> violations: a core hook spec that names a phase, and a
    hook declared in two places."""
    out: list[str] = []
    declared: dict[str, list[str]] = {}
    for module, (source, where) in sources.items():
        for line, name, text in hookspecs_in(source):
            declared.setdefault(name, []).append(f"{where}:{line}")
            mention = PHASE_MENTION.search(text)
            if layer(module) == CORE and mention:
                out.append(f"{where}:{line}: hook spec {name} describes {mention.group(0)} — rule: {HOOKSPEC_RULE}")
    for name, places in sorted(declared.items()):
        if len(places) > 1:
            out.append(f"{places[1]}: hook spec {name} is also declared at {places[0]} — rule: one declaration per hook")
    return out


def test_no_phase_hook_spec_in_the_core():
    sources = {m: (p.read_text(), str(p.relative_to(ROOT))) for m, p in source_modules().items()}
    violations = check_hookspecs(sources)
    if violations:
        pytest.fail("hook spec violations:\n" + "\n".join(violations), pytrace=False)
    # The Cognate hooks are where the rule puts them, and the core has no training events.
    cognate = {name for _, name, _ in hookspecs_in(sources["agent_forge.phases.cognate.hookspecs"][0])}
    assert cognate == {"forge_register_trainers", "forge_register_callbacks", "forge_register_variants"}
    assert "agent_forge.events" not in sources


def test_the_hookspec_checker_catches_a_phase_in_the_core():
    core = ('@hookspec\ndef forge_register_trainers(register):\n'
            '    """See :mod:`agent_forge.phases.cognate.trainer`."""\n'
            '@hookspec\ndef forge_register_evaluators(register):\n'
            '    """ctx is an agent_forge.phases.common.evaluation.EvalContext."""\n')
    phase = '@hookspec\ndef forge_register_trainers(register):\n    """Trainers."""\n'
    found = check_hookspecs({"agent_forge.hookspecs": (core, "agent_forge/hookspecs.py"),
                             "agent_forge.phases.cognate.hookspecs": (phase, "phases/cognate/hookspecs.py")})
    assert found == [
        f"agent_forge/hookspecs.py:2: hook spec forge_register_trainers describes agent_forge.phases.cognate"
        f" — rule: {HOOKSPEC_RULE}",
        "phases/cognate/hookspecs.py:2: hook spec forge_register_trainers is also declared at"
        " agent_forge/hookspecs.py:2 — rule: one declaration per hook",
    ]


# -- no import cycle anywhere in the package --------------------------------------------------
# In a cycle, what a module holds while it runs depends on which of the two was imported first
# (the other is half-initialised), and an import moved into a function only postpones the cycle
# to the first call. So every import statement counts, wherever it is, except those under
# ``if TYPE_CHECKING:``, which never run.


def type_checking_lines(source: str) -> set[int]:
    """Lines of the import statements under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt)
                      if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def import_graph(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """module -> {module of the package it imports at run time: ``path:line`` of the first such import}."""
    modules = source_modules(root)
    graph: dict[str, dict[str, str]] = {}
    for module, path in modules.items():
        source = path.read_text()
        skip = type_checking_lines(source)
        edges: dict[str, str] = {}
        for line, target in imported_names(module, source, is_package=path.name == "__init__.py"):
            if line not in skip and target in modules and target != module and target not in edges:
                edges[target] = f"{path.relative_to(root)}:{line}"
        graph[module] = edges
    return graph


def import_cycles(graph: dict[str, dict[str, str]]) -> list[str]:
    """One line per strongly connected group of modules (Tarjan), naming a cycle through it and
    the import that makes each step: ``a -> b -> a (a.py:3, b.py:9)``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    out = []
    for group in sorted(groups):
        # The shortest way from the group's first module back to itself (breadth first, inside the group).
        start, members = group[0], set(group)
        paths = {start: [start]}
        queue = [start]
        cycle: list[str] = []
        while queue and not cycle:
            node = queue.pop(0)
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycle = paths[node] + [start]
                    break
                if nxt in members and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    queue.append(nxt)
        where = ", ".join(graph[a][b] for a, b in zip(cycle, cycle[1:]))
        out.append(f"{' -> '.join(cycle)} ({where}); the group: {', '.join(group)}")
    return out


def test_no_import_cycle_anywhere_in_the_package():
    cycles = import_cycles(import_graph())
    if cycles:
        pytest.fail("import cycles (move the shared part into a module both can import):\n" + "\n".join(cycles),
                    pytrace=False)


def test_the_cycle_finder_counts_imports_in_functions_and_skips_type_checking_ones(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.setuptools]\npackage-dir = { "agent_forge" = "agent_forge" }\n')
    pkg = tmp_path / "agent_forge"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from agent_forge.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from agent_forge import a\n")         # closes a -> b -> a
    (pkg / "c.py").write_text("from agent_forge import d\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agent_forge.c import X\n")
    (pkg / "e.py").write_text("from . import f\n")
    (pkg / "f.py").write_text("import agent_forge.g\n")
    (pkg / "g.py").write_text("from .e import x\n")                                  # e -> f -> g -> e, relatively
    assert import_cycles(import_graph(tmp_path)) == [
        "agent_forge.a -> agent_forge.b -> agent_forge.a (agent_forge/a.py:1, agent_forge/b.py:2);"
        " the group: agent_forge.a, agent_forge.b",
        "agent_forge.e -> agent_forge.f -> agent_forge.g -> agent_forge.e (agent_forge/e.py:1, agent_forge/f.py:1,"
        " agent_forge/g.py:1); the group: agent_forge.e, agent_forge.f, agent_forge.g",
    ]
