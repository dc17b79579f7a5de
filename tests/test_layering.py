"""Layering: linvae.symbolic never imports jax; linvae.numeric and linvae.deep never import sympy.

Each import runs in a fresh interpreter, so modules loaded by other tests cannot mask a violation.
"""

import subprocess
import sys

import pytest

CASES = [
    ("linvae.symbolic", "jax"),
    ("linvae.symbolic.notes", "jax"),
    ("linvae.theorems", "jax"),
    ("linvae.theorems", "sympy"),
    ("linvae.numeric", "sympy"),
    ("linvae.deep", "sympy"),
]


@pytest.mark.parametrize(("module", "forbidden"), CASES)
def test_import_does_not_load(module, forbidden):
    code = (
        f"import sys, {module}; "
        f"bad = sorted(m for m in sys.modules if m == {forbidden!r} or m.startswith({forbidden!r} + '.')); "
        f"assert not bad, bad[:5]"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"importing {module} loaded {forbidden}:\n{res.stderr[-2000:]}"


def test_numeric_and_symbolic_sources_do_not_cross():
    """Static check as well: no source file of one side names the other's library."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "linvae"
    for sub, banned in (
        ("symbolic", ("import jax", "from jax", "linvae.numeric")),
        ("numeric", ("import sympy", "from sympy", "linvae.symbolic")),
        ("deep", ("import sympy", "from sympy", "linvae.symbolic")),
    ):
        for path in (root / sub).rglob("*.py"):
            text = path.read_text()
            for b in banned:
                assert b not in text, f"{path.relative_to(root)} contains {b!r}"
