"""The house rules a reader relies on: imports run one way, one module reads the environment, one exception tree.

The layer check reads every ``import`` in the package with ``ast`` (also those inside functions and
under ``TYPE_CHECKING``: a lazy import is still an arrow), like an import-linter ``layers`` contract,
without the extra tool. scripts/test.sh runs this file first, before the rest of the suite.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import reallabor_mail
from reallabor_mail import errors

PACKAGE = Path(reallabor_mail.__file__).parent

# Top → bottom. A module may import its own layer and any layer below, never one above.
LAYERS = ("cli", "web", "delivery", "publish", "mail", "recipients", "render", "content", "i18n")
BESIDE = {"mailbox": "delivery"}  # rooms on the level of another: reading the mailbox sits beside sending
BASE = ("errors", "settings", "db", "addresses", "characters")  # the floor: every layer may use them

# Arrows that run the wrong way today, each to be removed when its split lands (the test fails on a
# stale entry, so the list cannot outlive the fix).
KNOWN_WRONG_WAY: dict[tuple[str, str], str] = {}


def module_name(file: Path) -> str:
    parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    """0 for cli (top) … len(LAYERS) for the base modules and the package itself (bottom)."""
    parts = module.split(".")
    if len(parts) > 1 and BESIDE.get(parts[1], parts[1]) in LAYERS:
        return LAYERS.index(BESIDE.get(parts[1], parts[1]))
    return len(LAYERS)


def imports(file: Path) -> set[str]:
    """Every reallabor_mail module ``file`` imports, wherever in the file the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "reallabor_mail"}


def test_imports_run_one_way() -> None:
    wrong_way = {
        (module_name(file), imported)
        for file in sorted(PACKAGE.rglob("*.py"))
        for imported in imports(file)
        if rank(imported) < rank(module_name(file))
    }
    assert wrong_way - KNOWN_WRONG_WAY.keys() == set(), "a lower layer imports a higher one"
    assert KNOWN_WRONG_WAY.keys() - wrong_way == set(), "fixed: remove these from KNOWN_WRONG_WAY"


def test_every_module_lives_in_a_layer_or_the_base() -> None:
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE).with_suffix("").parts
        assert parts[0] in (*LAYERS, *BESIDE) or (len(parts) == 1 and parts[0] in (*BASE, "__init__")), file


ENVIRONMENT_READ = re.compile(
    r"\bos\.environ\b|\bgetenv\b|\bfrom os import\b.*\benviron\b|\bauto_envvar_prefix\b|\benvvar="
)


def test_only_settings_reads_the_environment() -> None:
    """Also click's ``envvar=``: a variable read there would escape the one settings object and its checks."""
    readers = [
        f"{file.relative_to(PACKAGE.parent)}:{number}"
        for file in sorted(PACKAGE.rglob("*.py"))
        if file != PACKAGE / "settings.py"
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1)
        if ENVIRONMENT_READ.search(line)
    ]
    assert readers == []


TREE_ENTRY = re.compile(r"^    [ │├└─]*(?P<name>[A-Z]\w+) {2,}\S")  # "    │   ├── StampError   one recipient's …"


def drawn_tree() -> dict[str, str]:
    """Each exception of the tree in errors.py's docstring, with its parent as drawn (indent = depth)."""
    parents: dict[str, str] = {}
    open_branches: list[tuple[int, str]] = []  # (column, name) of the entries above this line
    for line in (errors.__doc__ or "").splitlines():
        match = TREE_ENTRY.match(line)
        if not match:
            continue
        column = match.start("name")
        while open_branches and open_branches[-1][0] >= column:
            open_branches.pop()
        if open_branches:
            parents[match["name"]] = open_branches[-1][1]
        open_branches.append((column, match["name"]))
    return parents


def package_exceptions() -> dict[str, type[BaseException]]:
    """Every public exception class the package defines (a private one never leaves its module)."""
    found: dict[str, type[BaseException]] = {}
    for file in PACKAGE.rglob("*.py"):
        module = importlib.import_module(module_name(file))
        for name, value in vars(module).items():
            defined_here = inspect.isclass(value) and value.__module__ == module.__name__
            if defined_here and issubclass(value, BaseException) and not name.startswith("_"):
                found[name] = value
    return found


def test_every_exception_is_in_the_tree_where_it_is_drawn() -> None:
    tree = drawn_tree()
    exceptions = package_exceptions()
    assert set(exceptions) == {"ReallaborError", *tree}
    for name, parent in tree.items():
        assert exceptions[name].__bases__ == (exceptions[parent],), name
    assert exceptions["ReallaborError"].__bases__ == (Exception,)
