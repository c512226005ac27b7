"""Import rules between layers, read from the source: the domain is pure, rendering is I/O-free."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# bot.services.dashboard's values have not moved to bot.domain yet
RENDER_EXCEPTIONS = {("home.py", "bot.services.dashboard")}


def imports(path: Path) -> set[str]:
    """Every module `path` imports, TYPE_CHECKING and function-level imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_render_imports_no_store_and_no_services() -> None:
    offending = {
        (path.name, module)
        for path in (ROOT / "bot" / "render").glob("*.py")
        for module in imports(path)
        if under(module, "store") or under(module, "bot.services")
    }
    assert offending <= RENDER_EXCEPTIONS, offending - RENDER_EXCEPTIONS


def test_domain_imports_only_the_standard_library_and_itself() -> None:
    offending = {
        (path.name, module)
        for path in (ROOT / "bot" / "domain").glob("*.py")
        for module in imports(path)
        if not under(module, "bot.domain") and module.split(".")[0] not in sys.stdlib_module_names
    }
    assert offending == set()
