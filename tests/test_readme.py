"""The README's Quick start holds exactly two commands, and CI runs the second one verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Quick start$(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, "README.md needs a '## Quick start' section"
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section.group(1), re.S)]


def test_quick_start_has_two_commands():
    cmds = quick_start_commands()
    assert len(cmds) == 2 and all("\n" not in c for c in cmds)
    assert "python -m linvae.figures" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in ci


def test_readme_python_example_runs_and_prints_what_it_says(capsys):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md should hold a Python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    gap, mi, formula = (float(x) for x in capsys.readouterr().out.split())
    assert abs(gap) < 1e-9
    assert round(mi, 4) == round(formula, 4) == 8.7288


def test_readme_theorem_table_matches_the_registry():
    from linvae.theorems import THEOREMS

    text = (ROOT / "README.md").read_text()
    rows = re.findall(
        r"^\| (T\d+) \| \[`([a-z0-9-]+)`\]\(proofs/[a-z0-9-]+\.md\) \| (.*?) \| "
        r"(proved|sketch|conjecture, numerically supported) \|",
        text,
        re.M,
    )
    assert [(n, s) for n, s, _, _ in rows] == [(th.number, slug) for slug, th in THEOREMS.items()]
    for _, slug, statement, status in rows:
        assert statement.replace("\\|", "|") == THEOREMS[slug].statement, slug
        assert status == THEOREMS[slug].status, slug
