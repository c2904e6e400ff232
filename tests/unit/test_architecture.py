"""The house rules of the package, checked from its source (see docs/ARCHITECTURE.md).

- no import cycles between modules (imports made only for type checking do not count);
- every error a user sees is defined in errors.py;
- the front ends (FRONT_ENDS) use the describer through its public methods only, and import
  nothing from inside ``see/`` or ``say/`` (type-checking imports too): they reach the stages
  through ``pipeline`` (``Describer``), the gallery through ``gallery``, and shared ground
  (``results``, ``images``, ``audio``, ``languages``, ``settings``, ``errors``, ``store``);
- no module grows past MAX_LINES.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "describe_local"
MAX_LINES = 400
DESCRIBER_API = {
    "describe", "describe_all", "read", "tell", "look", "ask", "speak", "translate", "reload_gallery", "status",
    "languages",
    "close",
    "open_photo",
}
# Every package that presents the describer's work to someone: none reaches into the stages.
FRONT_ENDS = ("cli", "server", "video", "alt_text", "collection", "evaluation", "live_text")
INTERNALS = ("describe_local.see", "describe_local.say")
# The one front end that needs engines themselves: converting a checkpoint to ONNX is each engine's
# own export (no describer is involved, and the store must not import torch).
ALLOWED_INSIDE = {("describe_local.cli.convert", "describe_local.see.caption.ofa_onnx.convert"),
                  ("describe_local.cli.convert", "describe_local.see.caption.florence_onnx.convert")}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports at run time (at the top or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known  # `from pkg import module`
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined in ``base`` itself
                found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return components


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert graph["describe_local.pipeline"], "the import graph came out empty: the parser is broken"
    assert _cycles(graph) == []


def test_the_store_imports_no_stage():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("describe_local.store"):
            assert not {m for m in _imports(name, path, set(modules)) if m.startswith("describe_local.see")}, name


def test_every_user_facing_error_is_defined_in_errors_py():
    strays = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if bases & {"DescribeLocalError", "Exception"} or any(b.endswith("Error") for b in bases):
                    strays.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert strays == []


def _imported_names(path: Path, module: str) -> set[str]:
    """Every module name ``path`` imports, anywhere in it (type-checking imports included), as written."""
    names: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _reaches_inside(path: Path, module: str) -> set[str]:
    """The imports of ``path`` that reach inside ``see/`` or ``say/`` (and are not allowed)."""
    return {name for name in _imported_names(path, module)
            if any(name == inner or name.startswith(inner + ".") for inner in INTERNALS)
            and (module, name) not in ALLOWED_INSIDE
            and not any(name.startswith(allowed + ".") for m, allowed in ALLOWED_INSIDE if m == module)}


def _front_end_modules() -> dict[str, Path]:
    return {name: path for name, path in _modules().items()
            if name.split(".")[1:2] and name.split(".")[1] in FRONT_ENDS}


def test_the_inside_check_catches_a_planted_import(tmp_path: Path):
    planted = tmp_path / "planted.py"
    planted.write_text("from typing import TYPE_CHECKING\n"
                       "if TYPE_CHECKING:\n    from describe_local.say.plan import LanguageInfo\n"
                       "def f():\n    from describe_local.see.faces import gallery\n"
                       "    import describe_local.see.text\n"
                       "from describe_local.gallery import open_gallery\n", encoding="utf-8")
    found = _reaches_inside(planted, "describe_local.cli.planted")
    assert {"describe_local.say.plan", "describe_local.see.faces", "describe_local.see.text"} <= found
    assert not {n for n in found if n.startswith("describe_local.gallery")}


def test_front_ends_import_nothing_from_inside_see_or_say():
    modules = _front_end_modules()
    assert {name.split(".")[1] for name in modules} == set(FRONT_ENDS), "a front-end package went missing"
    inside = {name: sorted(found) for name, path in modules.items() if (found := _reaches_inside(path, name))}
    assert inside == {}


def test_front_ends_use_only_the_describers_public_methods():
    used: dict[str, set[str]] = {}
    for folder in FRONT_ENDS:
        for path in (PACKAGE / folder).rglob("*.py"):
            for name in re.findall(r"\bdescriber\.(\w+)", path.read_text(encoding="utf-8")):
                used.setdefault(name, set()).add(f"{folder}/{path.name}")
    assert "describe" in used, "no use of the describer found: the check is broken"
    assert {name: files for name, files in used.items() if name not in DESCRIBER_API} == {}


def test_no_module_is_over_the_size_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
