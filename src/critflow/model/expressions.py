"""Safe arithmetic expressions of parameters, evaluated on numpy arrays.

Allowed: numbers, parameter names, ``+ - * / **``, parentheses, and the functions
``min``, ``max``, ``abs``. Nothing else is evaluated (no attribute access, no calls to Python).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

_BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}
_FUNCTIONS = {"min": np.minimum, "max": np.maximum, "abs": np.abs}


class ExpressionError(ValueError):
    """An expression that is not valid; the message says why."""


def _short(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters for a message (expressions run to 500)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


MAX_EXPRESSION = 500
"""Longest expression read, in characters (deeper syntax trees would exhaust the stack)."""


class Expression:
    """A parsed expression; ``names`` are the parameters it reads."""

    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_EXPRESSION:
            raise ExpressionError(
                f"an expression of {len(text):,} characters is longer than the "
                f"{MAX_EXPRESSION} critflow reads; introduce parameters for its parts"
            )
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            msg = getattr(exc, "msg", None) or type(exc).__name__
            raise ExpressionError(f"'{_short(text)}' is not a valid expression ({msg})") from None
        self._body = tree.body
        self.names: frozenset[str] = frozenset(self._check(self._body))

    def _check(self, node: ast.AST) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            if isinstance(node.value, bool):
                raise ExpressionError(f"'{_short(self.text)}': true/false is not a number")
            value = node.value
            if abs(value) > 1e300 if isinstance(value, int) else not math.isfinite(value):
                raise ExpressionError(
                    f"'{_short(self.text)}' holds a number beyond the float range ({_short(str(node.value), 40)}); "
                    "write finite numbers below 1e300"
                )
            return set()
        if isinstance(node, ast.Name):
            return {node.id}
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._check(node.left) | self._check(node.right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return self._check(node.operand)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and node.args
        ):
            names: set[str] = set()
            for arg in node.args:
                names |= self._check(arg)
            return names
        raise ExpressionError(
            f"'{_short(self.text)}' uses '{_short(ast.unparse(node), 40)}', which expressions do not allow; use "
            "numbers, parameter names, + - * / **, parentheses and min(), max(), abs()"
        )

    def evaluate(self, values: Mapping[str, np.ndarray | float]) -> np.ndarray:
        """Evaluate with parameter values (scalars or arrays that broadcast together)."""
        return np.asarray(self._eval(self._body, values), dtype=float)

    def _eval(self, node: ast.AST, values: Mapping[str, np.ndarray | float]):
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](
                self._eval(node.left, values), self._eval(node.right, values)
            )
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Call):
            args = [self._eval(a, values) for a in node.args]
            func = _FUNCTIONS[node.func.id]  # type: ignore[union-attr]
            if func is np.abs:
                return np.abs(args[0])
            result = args[0]
            for arg in args[1:]:
                result = func(result, arg)
            return result
        raise AssertionError("unreachable: checked at parse time")


@lru_cache(maxsize=4096)
def parse_expression(text: str) -> Expression:
    """Parse (and cache) an expression."""
    return Expression(text)
