"""Imports point one way: admin → books → payouts → offers → payments → scheduling → contracts →
accounts → audit, notifications. A module may import its own package and any package
below it, never one above (CONVENTIONS.md); contracts never imports stripe."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first; a package may import those at its index or below.
LAYERS = [
    {"database", "clock", "errors", "extensions", "config", "jobs"},
    {"audit", "notifications"},
    {"accounts"},
    {"contracts"},
    {"scheduling"},
    {"payments"},
    {"offers"},
    {"payouts"},
    {"books"},
    {"admin"},
]
LEVEL = {name: index for index, names in enumerate(LAYERS) for name in names}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages `path` imports at run time (`if TYPE_CHECKING:` blocks are
    for typing only, as audit and notifications know `User`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(p for p in LEVEL if (ROOT / p).is_dir()))
def test_a_package_imports_only_itself_and_the_layers_below(package: str) -> None:
    upward = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules_of(package)
        for name in imported_packages(path)
        if name in LEVEL and LEVEL[name] > LEVEL[package]
    }
    assert not upward, sorted(upward)


def test_contracts_and_scheduling_never_import_stripe() -> None:
    for package in ("contracts", "scheduling"):
        for path in modules_of(package):
            assert "stripe" not in imported_packages(path), path


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nfrom scheduling import sessions\n"
        "import payments.models\nif TYPE_CHECKING:\n    from admin import views\n"
    )
    assert imported_packages(module) == {"typing", "scheduling", "payments"}
