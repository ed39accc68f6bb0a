"""A function compiled from generated source sees only the scope it is given."""

from __future__ import annotations

import pytest

from trio_harvest.codegen import compiled


def test_a_compiled_function_uses_its_scope_and_nothing_else() -> None:
    add = compiled("add", ["def add(x):", "    return x + k"], {"k": 3})
    assert add(4) == 7 and add.__name__ == "add"
    leak = compiled("leak", ["def leak():", "    return compiled"], {})
    with pytest.raises(NameError):
        leak()
