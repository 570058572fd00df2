"""The package's shape: no module over the line limit, no function over its limit.

Limits and any justified exception live in pyproject.toml (`[tool.ragsys.layout]`); the layer
rules between packages are import-linter contracts beside them (`make lint` runs them).
"""

from __future__ import annotations

import ast
import tomllib

from tests.fixtures.paths import REPO_ROOT as ROOT

LAYOUT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ragsys"]["layout"]


def long_functions(source: str, limit: int) -> dict[str, int]:
    """Functions (methods and nested ones too) longer than `limit` lines, signature included."""
    out: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                out[node.name] = lines
    return out


def _modules() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
        for p in sorted((ROOT / "ragsys").rglob("*.py"))
    }


def test_no_module_is_over_the_line_limit() -> None:
    limit, exceptions = LAYOUT["max_module_lines"], LAYOUT["exceptions"]
    too_long = {
        rel: n
        for rel, text in _modules().items()
        if (n := len(text.splitlines())) > limit and rel not in exceptions
    }
    assert not too_long, f"modules over {limit} lines (split by concept, or name the exception): {too_long}"


def test_no_function_is_over_the_line_limit() -> None:
    limit, exceptions = LAYOUT["max_function_lines"], LAYOUT["exceptions"]
    too_long = {
        f"{rel}:{name}": n
        for rel, text in _modules().items()
        for name, n in long_functions(text, limit).items()
        if f"{rel}:{name}" not in exceptions
    }
    assert not too_long, f"functions over {limit} lines (signature included): {too_long}"


def test_long_functions_counts_from_the_def_line_to_the_last() -> None:
    def source(body_lines: int) -> str:
        body = "\n".join(f"        x{i} = {i}" for i in range(body_lines))
        return f"class C:\n    def method(self):\n{body}\n"

    assert long_functions(source(59), 60) == {}  # def + 59 lines: at the limit
    assert long_functions(source(60), 60) == {"method": 61}
