"""The house rules that keep the code readable, checked on the source: short functions and classes, no module
reaching into another's private names, one base for periodic callbacks, a public API whose docstring says what the
code takes."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import projector_export

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("projector_export", "training")
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 250
CALLBACK_BASE = ("projector_export/periodic.py", "PeriodicCallback")


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path))
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _span(node: ast.AST) -> int:
    first = min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])
    return node.end_lineno - first + 1


def test_functions_and_classes_are_short_enough_to_read_at_once():
    too_long = []
    for path, tree in _modules().items():
        for node in ast.walk(tree):
            limit = {ast.FunctionDef: MAX_FUNCTION_LINES, ast.AsyncFunctionDef: MAX_FUNCTION_LINES,
                     ast.ClassDef: MAX_CLASS_LINES}.get(type(node))
            if limit and _span(node) > limit:
                too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {_span(node)} lines > {limit}")
    assert too_long == []


def _project_module(name: str | None, path: Path, level: int) -> str | None:
    """The dotted name of a module of ours that an import names (relative imports resolved), else None."""
    if level:
        package = path.relative_to(ROOT).with_suffix("").parts[:-level]
        name = ".".join([*package, *([name] if name else [])])
    return name if name and name.split(".")[0] in PACKAGES else None


def test_no_module_uses_another_modules_private_names():
    found = []
    for path, tree in _modules().items():
        modules_bound: set[str] = set()  # local names bound to modules of ours
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _project_module(node.module, path, node.level)
                if source is None:
                    continue
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {source}.{alias.name}")
                    modules_bound.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if _project_module(alias.name, path, 0):
                        modules_bound.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in modules_bound):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert found == []


def test_every_callback_is_a_periodic_callback():
    """Only the one base subclasses Keras' Callback; every other callback of the library and the app subclasses it
    (directly or through another of ours)."""
    direct, classes = [], {}
    for path, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(base) for base in node.bases]
                classes[node.name] = bases
                if any(base.endswith("callbacks.Callback") or base == "Callback" for base in bases):
                    direct.append((str(path.relative_to(ROOT)), node.name))
    assert direct == [CALLBACK_BASE]
    callbacks = [name for name, bases in classes.items() if _derives_from(name, CALLBACK_BASE[1], classes)]
    assert {"EmbeddingSnapshots", "ImageLogger", "TensorBoardScalars", "StopAtStep", "PeriodicCheckpoints",
            "StopOnDivergence"} <= set(callbacks)


def _derives_from(name: str, base: str, classes: dict[str, list[str]]) -> bool:
    return name != base and any(parent.split(".")[-1] == base or _derives_from(parent.split(".")[-1], base, classes)
                                for parent in classes.get(name, []))


_ENTRY = re.compile(r"\b([A-Za-z_]\w*)\(([^()]*)\)")


def _documented_signatures() -> dict[str, list[str]]:
    """{name: the arguments the package docstring lists for it} for every `name(args)` in the docstring."""
    text = " ".join(projector_export.__doc__.split())
    return {match.group(1): [part.strip() for part in match.group(2).split(",") if part.strip()]
            for match in _ENTRY.finditer(text) if match.group(1) in projector_export.__all__}


def test_every_public_name_is_in_the_package_docstring():
    for name in projector_export.__all__:
        assert re.search(rf"\b{name}\b", projector_export.__doc__), name
        getattr(projector_export, name)  # and importable


@pytest.mark.parametrize("name", sorted(_documented_signatures()))
def test_the_package_docstring_gives_each_signature_as_the_code_has_it(name):
    listed = _documented_signatures()[name]
    more = listed[-1:] == ["..."]
    listed = listed[:-1] if more else listed
    parameters = [p for p in inspect.signature(getattr(projector_export, name)).parameters.values()
                  if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    written = []
    for p in parameters:
        if p.kind == p.KEYWORD_ONLY and "*" not in written:
            written.append("*")
        written.append(p.name)
    assert (written[:len(listed)] if more else written) == listed
