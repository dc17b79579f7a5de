r"""Result tables of a sweep, like a paper's: one row per (data set, phase, β, λ), mean ± std over seeds.

Rows come from the evaluation records (``eval.json``) of a runs folder. Every metric present in any
record gets three columns, ``<metric>_mean``, ``<metric>_std`` (sample standard deviation over the
seeds of the cell, ``ddof = 1``; empty for a single seed) and ``<metric>_n`` (the seeds with a finite
value); failed models count in ``failed`` and enter no mean. The sorted per-latent KL spectrum is
averaged rank by rank (``kl_sorted_<r>``: the r-th largest latent KL).

Files: ``summary.csv`` (machine-readable, every column) and ``summary.md`` (the main metrics as
"mean ± std", a header naming the data source and the protocol or reduced configuration). A
cross-data-set table is the same format over several sweeps' rows.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from linvae._atomic import atomic_write

#: (key, label) of every tabulated quantity, in column order. ``nll``, ``kl``, ``l2``: training
#: means over the last ``log_window`` steps (the published protocol's logged losses); ``*_eval``: on
#: the evaluation images; ``active``: latents whose KL exceeds ``active_kl`` nats.
COLUMNS = (
    ("nll", "NLL"),
    ("kl", "KL"),
    ("l2", "L2"),
    ("nll_eval", "NLL (eval)"),
    ("kl_eval", "KL (eval)"),
    ("active", "active"),
    ("mig", "MIG"),
    ("sap", "SAP"),
    ("i_m", "I_m"),
    ("dci_d", "DCI D"),
    ("dci_c", "DCI C"),
    ("dci_i", "DCI I"),
    ("factor_vae", "FactorVAE"),
    ("beta_vae", "BetaVAE"),
)
#: Columns of the Markdown table (the CSV has all of :data:`COLUMNS` that any record holds).
MARKDOWN = ("nll", "kl", "active", "mig", "sap", "i_m", "dci_d", "factor_vae", "beta_vae")


def record_value(record: dict[str, Any], key: str, active_kl: float) -> float:
    """One tabulated quantity of an evaluation record (NaN if absent, failed or not finite)."""
    if key in ("nll", "kl", "l2"):
        v = (record.get("window") or {}).get(key)
    elif record.get("metrics") is None:
        v = None
    elif key == "active":
        kl = record["metrics"].get("kl_latent")
        v = None if kl is None else int(np.sum(np.asarray(kl, np.float64) > active_kl))
    else:
        v = record["metrics"].get(key)
    return float("nan") if v is None or not math.isfinite(float(v)) else float(v)


def sorted_spectrum(record: dict[str, Any]) -> np.ndarray | None:
    """The per-latent KL of a record, largest first (``None`` if it has none)."""
    m = record.get("metrics")
    if not m or m.get("kl_latent") is None:
        return None
    return np.sort(np.asarray(m["kl_latent"], np.float64))[::-1]


def _cell_key(r: dict[str, Any]) -> tuple:
    mb = r["member"]
    return (r["phase"], mb.get("kl_target"), mb["beta"], mb["lambda"])


def summary_rows(
    records: Sequence[dict[str, Any]], *, dataset: str, source: str, protocol: str, active_kl: float
) -> list[dict[str, Any]]:
    """One row per (phase, KL target, β, λ) cell of ``records``: counts, then mean / std / n of every
    quantity in :data:`COLUMNS` that some record has, then the mean sorted KL spectrum.

    Args:
        records: evaluation records of one sweep (both phases).
        dataset: data-set name for the ``dataset`` column.
        source: the data's provenance label (real file or procedural stand-in).
        protocol: ``linvae.deep.config.protocol_label`` of the sweep.
        active_kl: threshold (nats) of an active latent.
    """
    present = [k for k, _ in COLUMNS if any(np.isfinite(record_value(r, k, active_kl)) for r in records)]
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        cells.setdefault(_cell_key(r), []).append(r)
    phase_order = {"beta": 0, "lambda": 1}
    rows = []
    for key in sorted(cells, key=lambda k: (phase_order.get(k[0], 2), k[1] or 0.0, k[2], k[3])):
        group = cells[key]
        phase, target, beta, lam = key
        ok = [r for r in group if r["status"] == "ok"]
        row: dict[str, Any] = {"dataset": dataset, "source": source, "protocol": protocol, "phase": phase}
        if target is not None:
            row["kl_target"] = target
        row.update(
            beta=beta, **{"lambda": lam}, steps=group[0]["steps"], models=len(group), failed=len(group) - len(ok),
            seeds=" ".join(str(r["member"]["seed"]) for r in sorted(group, key=lambda r: r["member"]["seed"])),
        )  # fmt: skip
        for k in present:
            vals = np.asarray([record_value(r, k, active_kl) for r in ok], np.float64)
            vals = vals[np.isfinite(vals)]
            row[f"{k}_mean"] = float(vals.mean()) if vals.size else float("nan")
            row[f"{k}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else float("nan")
            row[f"{k}_n"] = int(vals.size)
        spectra = [s for s in (sorted_spectrum(r) for r in ok) if s is not None]
        if spectra:
            mean = np.mean(np.stack(spectra), axis=0)
            for i, v in enumerate(mean):
                row[f"kl_sorted_{i + 1}"] = float(v)
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV text (the union of their columns, in first-seen order; missing cells empty)."""
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: _fmt(r.get(c, "")) for c in columns})
    return buf.getvalue()


def _pm(row: dict[str, Any], key: str) -> str:
    mean, std = row.get(f"{key}_mean", float("nan")), row.get(f"{key}_std", float("nan"))
    if not math.isfinite(mean):
        return "—"
    digits = 1 if abs(mean) >= 100 or key == "active" else (2 if abs(mean) >= 1 else 3)
    s = f"{mean:.{digits}f}"
    return s + (f" ± {std:.{digits}f}" if math.isfinite(std) else "")


def to_markdown(rows: Sequence[dict[str, Any]], *, title: str, notes: Sequence[str] = ()) -> str:
    """The rows as a Markdown table of the :data:`MARKDOWN` quantities, "mean ± std" with n = seeds."""
    labels = dict(COLUMNS)
    keys = [k for k in MARKDOWN if any(f"{k}_mean" in r for r in rows)]
    multi = len({r["dataset"] for r in rows}) > 1
    target = any("kl_target" in r for r in rows)
    head = (["data set"] if multi else []) + ["phase"] + (["C"] if target else []) + ["β", "λ", "n"]
    head += [labels[k] for k in keys]
    lines = [f"# {title}", "", *notes, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        n = r["models"] - r["failed"]
        cells = (
            ([r["dataset"]] if multi else [])
            + [r["phase"]]
            + ([_fmt(r.get("kl_target", ""))] if target else [])
        )
        cells += [
            f"{r['beta']:g}",
            f"{r['lambda']:g}",
            f"{n}" + (f" (+{r['failed']} failed)" if r["failed"] else ""),
        ]
        cells += [_pm(r, k) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(
    rows: Sequence[dict[str, Any]],
    stem: str | os.PathLike[str],
    *,
    title: str,
    notes: Sequence[str] = (),
) -> tuple[str, str]:
    """Write ``<stem>.csv`` and ``<stem>.md`` atomically; returns their paths."""
    csv_path, md_path = f"{os.fspath(stem)}.csv", f"{os.fspath(stem)}.md"
    atomic_write(csv_path, lambda f: f.write(to_csv(rows)), mode="w")
    atomic_write(md_path, lambda f: f.write(to_markdown(rows, title=title, notes=notes)), mode="w")
    return csv_path, md_path


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``summary.csv`` (numbers parsed back to float; empty cells NaN)."""
    text_cols = {"dataset", "source", "protocol", "phase", "seeds"}
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row: dict[str, Any] = {}
            for k, v in r.items():
                if k in text_cols:
                    row[k] = v
                elif k in ("steps", "models", "failed") or k.endswith("_n"):
                    row[k] = int(v) if v else 0
                else:
                    row[k] = float(v) if v else float("nan")
            out.append(row)
    return out
