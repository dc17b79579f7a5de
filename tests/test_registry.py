"""The theorem registry: every slug of docs/theory.md §9 has its four faces, and they agree.

Faces: the symbolic certificate (``derive``), the numeric prediction (``predict``), the property-test
file and the proof note. The note's Statement line and Assumptions must equal the registry's, its
Status must match, and its generated blocks must not be stale.
"""

import re

import pytest

from linvae.theorems import FIGURE_SLUGS, THEOREMS, Theorem

#: The catalogue of docs/theory.md §9, in order.
CATALOGUE = (
    "population-loss",
    "matrix-gradients",
    "decoder-block",
    "encoder-block",
    "gain-identity",
    "gain-contraction",
    "raw-gain-bound",
    "collapse-limit",
    "collapse-global-optimum",
    "mi-chain",
    "collapse-stability",
    "water-filling",
    "water-filling-information",
    "lambda-beta-equivalence",
    "beta-one-degenerate",
    "rotation-invariance",
    "lucas-threshold",
    "lucas-rate-distortion",
    "learned-isotropic",
    "diag-identifiability",
    "kumar-poole-exact",
    "ichikawa-ode",
    "ichikawa-fixed-point",
    "ichikawa-threshold",
    "pi-equilibrium",
)
SLUGS = list(THEOREMS)


def test_registry_covers_the_catalogue():
    assert tuple(THEOREMS) == CATALOGUE
    assert [t.number for t in THEOREMS.values()] == [f"T{i}" for i in range(1, 26)]
    assert all(isinstance(t, Theorem) and t.slug == s for s, t in THEOREMS.items())


@pytest.mark.parametrize("slug", SLUGS)
def test_statement_is_one_sentence(slug):
    s = THEOREMS[slug].statement
    assert s.endswith(".") and "\n" not in s
    assert not re.search(r"\.\s+[A-Z]", s[:-1]), f"{slug}: statement has more than one sentence"


@pytest.mark.parametrize("slug", SLUGS)
def test_proof_note_matches_registry(slug):
    th = THEOREMS[slug]
    assert th.proof_path.is_file(), f"missing proof note {th.proof_path}"
    text = th.proof_path.read_text()
    (statement,) = re.findall(r"^\*\*Statement\.\*\* (.*)$", text, flags=re.M)
    assert statement == th.statement
    assumptions = re.findall(r"^- \*\*A(\d+)\.\*\* (.*)$", text, flags=re.M)
    assert [a for _, a in assumptions] == list(th.hypotheses)
    assert [int(i) for i, _ in assumptions] == list(range(1, len(th.hypotheses) + 1))
    (status,) = re.findall(r"^\*\*Status:\*\* (.*)$", text, flags=re.M)
    assert status == th.status
    heading = "## Proof" if th.status == "proved" else "## Proof sketch"
    assert re.search(rf"^{heading}$", text, flags=re.M), f"{slug}: expected heading {heading!r}"
    checked = text[text.index("**Checked by:**") :]
    for face in (th.derive.target, th.predict.target, th.test_path.name):
        assert face in checked, f"{slug}: 'Checked by' does not name {face}"


@pytest.mark.parametrize("slug", SLUGS)
def test_test_file_exists(slug):
    th = THEOREMS[slug]
    assert th.test_path.is_file(), f"missing property-test file {th.test_path}"


@pytest.mark.parametrize("slug", SLUGS)
def test_prediction_resolves(slug):
    th = THEOREMS[slug]
    assert th.predict.target.startswith("linvae.numeric.")
    fn = th.predict.resolve()
    assert callable(fn), f"{slug}: {th.predict.target} is not callable"


@pytest.mark.parametrize("slug", SLUGS)
def test_certificate_resolves_to_sympy(slug):
    import sympy as sp

    th = THEOREMS[slug]
    assert th.derive.target.startswith("linvae.symbolic.")
    out = th.derive()
    leaves = list(out.values()) if isinstance(out, dict) else [out]
    assert leaves and all(isinstance(x, sp.Basic | sp.MatrixBase | dict | list | bool) for x in leaves)


@pytest.mark.parametrize("slug", SLUGS)
def test_figure_is_planned(slug):
    fig = THEOREMS[slug].figure
    assert fig is None or fig in FIGURE_SLUGS


def test_every_note_has_generated_algebra_and_none_is_stale():
    from linvae.symbolic import notes

    for th in THEOREMS.values():
        names = notes.block_names(th.proof_path.read_text())
        assert names, f"{th.slug}: no generated block"
        assert all(n.split("/")[0] == th.slug for n in names)
    assert notes.stale_notes() == [], "stale proof notes: run `python -m linvae.symbolic --write-proofs`"
    used = {n for th in THEOREMS.values() for n in notes.block_names(th.proof_path.read_text())}
    assert used == set(notes.BLOCKS), f"blocks never embedded: {set(notes.BLOCKS) - used}"


def test_regenerate_detects_a_stale_block():
    from linvae.symbolic import notes

    th = THEOREMS["water-filling"]
    text = th.proof_path.read_text()
    tampered = text.replace(r"\frac{\beta - 1}{2 \lambda \mu}", r"\frac{\beta}{2 \lambda \mu}", 1)
    assert tampered != text and notes.regenerate(tampered) == text


def test_proofs_readme_lists_every_theorem():
    from linvae.theorems import _ROOT

    readme = (_ROOT / "proofs" / "README.md").read_text()
    for slug, th in THEOREMS.items():
        row = [line for line in readme.splitlines() if line.startswith(f"| [`{slug}`]")]
        assert len(row) == 1, f"proofs/README.md: no row for {slug}"
        assert f"| {th.status} |" in row[0] and f"| {th.number} |" in row[0]
    assert (_ROOT / "proofs" / "notation.md").is_file()
