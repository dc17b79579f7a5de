"""The repository stands on its own: no tracked file names a path or a document outside it.

Users clone linvae alone. A reference to a theory or data document that lives next to the checkout
(the workspace this project grew up in), or a path that climbs out of the repository into a sibling
``shared`` folder, is a link the reader cannot follow and, in code, a file a fresh clone does not have.
The theory reference is ``docs/theory.md``, the data reference ``docs/data.md``, test data lives in
``tests/data/``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Spelled in pieces so that this file does not match itself.
FORBIDDEN = re.compile("|".join([r"\.\./" + "shared", "THEORY" + r"\.md", "DATA" + r"\.md", r"/work/" + "shared"]))

#: Folders a walk of a non-git copy ignores (build products and environments, never tracked).
_IGNORED = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".hypothesis", "figures", "runs", "build"}


def tracked_files() -> list[Path]:
    """The files git tracks (plus untracked, not ignored ones); a plain walk outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        return [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        return [
            p for p in ROOT.rglob("*") if p.is_file() and not _IGNORED.intersection(p.relative_to(ROOT).parts)
        ]


def test_no_file_refers_outside_the_repository():
    hits = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary files (images, animations)
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:100]}")
    assert not hits, "references outside the repository:\n" + "\n".join(hits)


def test_the_check_has_teeth(tmp_path):
    """The pattern catches each form a stray reference takes."""
    for bad in ("see ../" + "shared/" + "THEORY" + ".md §3", "THEORY" + ".md §9", "DATA" + ".md", "/work/" + "shared/x"):
        assert FORBIDDEN.search(bad), bad
    assert not FORBIDDEN.search("see docs/theory.md §3.9 and docs/data.md")


def test_the_theory_reference_has_every_cited_section():
    """Every ``docs/theory.md §N`` cited in the code names a section heading that exists."""
    theory = (ROOT / "docs" / "theory.md").read_text()
    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", theory, re.M))
    missing = set()
    for path in tracked_files():
        if path.suffix not in {".py", ".md"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for cite in re.findall(r"theory\.md[`]* §(\d+(?:\.\d+)?)", text):
            if cite not in headings:
                missing.add(f"{path.relative_to(ROOT)}: §{cite}")
    assert not missing, sorted(missing)


def test_the_theory_catalogue_is_the_registry():
    """§9 of docs/theory.md lists every theorem of linvae/theorems.py with its exact statement and status."""
    from linvae.theorems import THEOREMS

    theory = (ROOT / "docs" / "theory.md").read_text()
    section = re.search(r"^## 9\.(.*?)(?=^## 10\.)", theory, re.S | re.M)
    assert section, "docs/theory.md needs a '## 9.' section"
    rows = re.findall(r"^\| (T\d+) \| `([a-z0-9-]+)` \| (.*?) \| ([a-z ,]+?) \|$", section.group(1), re.M)
    assert [(n, s) for n, s, _, _ in rows] == [(th.number, slug) for slug, th in THEOREMS.items()]
    for _, slug, statement, status in rows:
        assert statement.replace("\\|", "|") == THEOREMS[slug].statement, slug
        assert status == THEOREMS[slug].status, slug


def test_every_entry_point_says_where_real_data_is_read():
    import contextlib
    import io

    from linvae.figures import __main__ as cli

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        cli.main(["--help"])
    text = " ".join(buf.getvalue().split())
    assert "$LINVAE_DATA" in text and "$DISENTANGLEMENT_LIB_DATA" in text
