"""Architecture rules read from the source: a pure domain, a renderer that knows neither the
store nor the services, and one registry of integration types."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import INTEGRATION_TYPES, parse_config
from bot.errors import ConfigError
from bot.ingest.parsers import PARSERS

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Import:
    """One import statement of a module, with every module path it may bring in."""

    where: str  # file:line
    statement: str  # as written, e.g. `from bot.services.oncall import TeamOnCall`
    targets: tuple[str, ...]  # absolute dotted paths: `a.b` for `import a.b` and `from a import b`

    def __str__(self) -> str:
        return f"{self.where}: {self.statement}"


def imports_in(source: str, *, module: str, is_package: bool, where: str) -> Iterator[Import]:
    """Every import in `source` (the module `module`), nested ones and `if TYPE_CHECKING:` too."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = tuple(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            # `from a import b` may import the module a.b or a name of a: check both as a.b
            targets = tuple(f"{origin}.{alias.name}" for alias in node.names)
        else:
            continue
        yield Import(f"{where}:{node.lineno}", ast.unparse(node), targets)


def imports_of(package: str) -> list[Import]:
    """Every import in every module of `package` (a dotted name under the repository root)."""
    found: list[Import] = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        relative = path.relative_to(ROOT)
        is_package = path.name == "__init__.py"
        parts = relative.parent.parts if is_package else relative.with_suffix("").parts
        found += imports_in(
            path.read_text(encoding="utf-8"),
            module=".".join(parts),
            is_package=is_package,
            where=str(relative),
        )
    assert found, f"no imports found in {package}"
    return found


def within(target: str, package: str) -> bool:
    return target == package or target.startswith(f"{package}.")


# --------------------------------------------------------------------------- the reader


def test_the_reader_sees_nested_relative_and_type_checking_imports() -> None:
    source = (
        "import json, os.path\n"
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "from ..store import repo as r\n"
        "if TYPE_CHECKING:\n"
        "    from bot.services.oncall import TeamOnCall\n"
        "def later():\n"
        "    import store.oncall\n"
    )
    found = list(imports_in(source, module="bot.domain.x", is_package=False, where="x.py"))
    assert [(i.where, i.targets) for i in found] == [
        ("x.py:1", ("json", "os.path")),
        ("x.py:2", ("typing.TYPE_CHECKING",)),
        ("x.py:3", ("bot.domain.sibling",)),
        ("x.py:4", ("bot.store.repo",)),
        ("x.py:6", ("bot.services.oncall.TeamOnCall",)),
        ("x.py:8", ("store.oncall",)),
    ]
    assert str(found[4]) == "x.py:6: from bot.services.oncall import TeamOnCall"
    in_package = imports_in("from . import a", module="bot.domain", is_package=True, where="i")
    assert [i.targets for i in in_package] == [("bot.domain.a",)]


# --------------------------------------------------------------------------- the rules


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    """bot/domain is pure: no Slack, SQLAlchemy, aiohttp, config or services."""
    offending = [
        str(found)
        for found in imports_of("bot.domain")
        if any(
            target.split(".")[0] not in sys.stdlib_module_names and not within(target, "bot.domain")
            for target in found.targets
        )
    ]
    assert not offending, "bot/domain must import only the standard library and bot.domain:\n" + (
        "\n".join(offending)
    )


def test_rendering_imports_neither_the_store_nor_the_services() -> None:
    """bot/render turns domain values into messages; what it shows is passed in."""
    offending = [
        str(found)
        for found in imports_of("bot.render")
        if any(within(t, "store") or within(t, "bot.services") for t in found.targets)
    ]
    assert not offending, "bot/render must not import store or bot.services:\n" + (
        "\n".join(offending)
    )


# --------------------------------------------------------------------------- integration types


def config_with_integration(kind: str) -> str:
    return (
        'slack:\n  incidents_channel: "C0INCIDENT"\n'
        f'integrations:\n  - name: source\n    type: "{kind}"\n    token: "t"\n'
    )


@pytest.mark.parametrize("kind", sorted(PARSERS))
def test_every_parser_type_is_an_accepted_integration_type(kind: str) -> None:
    config = parse_config(config_with_integration(kind), source="pulseops.yml", environ={})
    integration = config.integration("source")
    assert integration is not None and integration.type == kind


def test_every_accepted_integration_type_has_a_parser() -> None:
    unknown = "no-such-type"
    assert unknown not in PARSERS
    with pytest.raises(ConfigError) as info:
        parse_config(config_with_integration(unknown), source="pulseops.yml", environ={})
    (problem,) = info.value.problems
    assert "integrations[0].type: " in problem and f"(got {unknown!r})" in problem
    accepted = re.findall(r"'([^']+)'", problem.split("(got")[0])
    assert sorted(accepted) == sorted(PARSERS), problem
    assert sorted(INTEGRATION_TYPES) == sorted(PARSERS)
