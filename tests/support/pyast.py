"""`ast.parse` for the tests that read our own source, safe beside other threads.

CPython 3.11.7 keeps the AST converter's recursion depth in state the whole interpreter shares,
so a parse in another thread at the same moment (a test server's thread formatting a traceback:
3.11's traceback module parses the failing line to place its carets) can make this one fail with
`SystemError: AST constructor recursion depth mismatch` (cpython gh-106905). Two of the suite's
combined runs met it in `test_architecture`. Such a parse is tried again; any other error, or
the same one three times, is raised.
"""

from __future__ import annotations

import ast

_TRIES = 3


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse(source, filename)`, again if another thread's parse upset it (above)."""
    for attempt in range(1, _TRIES + 1):
        try:
            return ast.parse(source, filename)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == _TRIES:
                raise
    raise AssertionError("unreachable")  # the loop returns or raises
