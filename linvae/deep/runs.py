r"""The runs folder of a sweep: where each model's files live, what makes a folder's runs comparable,
and claims that let any number of workers share one folder.

Layout (see also :mod:`linvae.deep.record`)::

    <runs>/config.json                          # training config, sampler, data source, fingerprint
    <runs>/<phase>/<member>/model.npz           # a finished model (written last: its presence means done)
    <runs>/<phase>/<member>/train.json          # its training record (written before model.npz)
    <runs>/<phase>/<member>/checkpoint.npz      # the model's own in-progress checkpoint
    <runs>/<phase>/<member>/claim.json          # the worker training it now, with a heartbeat
    <runs>/aggregate.claim, aggregate.json      # the final step: who draws the figures, what was drawn

Checkpoints are per model, so a resumed sweep may group the models differently (other memory, other
device count, a grid extended by new β or seeds): every model continues from its own checkpoint.

**Claims.** A worker trains a model only after creating its ``claim.json`` *exclusively*: the claim is
written to a private temporary file and hard-linked into place (``os.link`` fails when the name exists,
atomically, also on NFS, where ``O_EXCL`` was not always honoured), so of many workers racing for one
model exactly one wins. The owner touches its claims every :data:`HEARTBEAT_S` seconds (a background
thread). A claim is *stale* when its heartbeat is older than ``stale_s`` (default :data:`STALE_S`), or
at once when it names a process of this host that no longer runs (a worker killed by SIGKILL or the
out-of-memory killer); a stale claim is taken over by renaming it to a unique tombstone (only one
renamer succeeds), checking that the renamed file is the stale claim that was judged, and claiming
afresh. The new owner resumes the model from its checkpoint, so no step is lost but those after it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from linvae.deep import checkpoint
from linvae.deep.config import DeepConfig
from linvae.deep.data import AbstractDataset, fingerprint
from linvae.deep.data.sampler import SAMPLER
from linvae.deep.model import AbstractVAE
from linvae.deep.record import Member, check_or_record, member_dir, read_json

#: Config fields that change what a trained model is; a runs folder refuses a config that differs.
TRAINING_FIELDS = (
    "dataset", "image_size", "model", "latent_dim", "likelihood", "obs_var", "learning_rate", "adam_b1", "adam_b2",
    "adam_eps", "lr_decay_to", "batch_size", "beta_steps", "lambda_steps", "beta_schedule",
    "warmup_steps", "log_window",
)  # fmt: skip
#: Seconds between heartbeats of a worker's claims.
HEARTBEAT_S = 10.0
#: A claim whose heartbeat is older than this many seconds belongs to a dead worker (12 heartbeats:
#: a worker paused by a slow file system or a long compilation is not taken for dead).
STALE_S = 120.0
CLAIM_FILE = "claim.json"


# ---------------------------------------------------------------------------------------------------
# Where things are
# ---------------------------------------------------------------------------------------------------


def target_folders(cfg: DeepConfig, runs: str | os.PathLike[str]) -> list[tuple[float | None, Path]]:
    """The runs folder of each KL target of a controller sweep: ``[(None, runs)]`` without
    ``cfg.kl_targets``, else ``(C, runs/C<C>)`` for each target C (each one a complete runs folder)."""
    if not cfg.kl_targets:
        return [(None, Path(runs))]
    return [(float(c), Path(runs) / f"C{float(c):g}") for c in cfg.kl_targets]


def for_target(cfg: DeepConfig, target: float | None) -> DeepConfig:
    """The configuration of the models of one KL target (``cfg`` itself for ``None``)."""
    return cfg if target is None else dataclasses.replace(cfg, kl_targets=(float(target),))


def model_path(runs: Path, phase: str, member: Member) -> Path:
    """The parameter file of a trained model (its presence means the model is done)."""
    return member_dir(runs, phase, member) / "model.npz"


def checkpoint_path(runs: Path, phase: str, member: Member) -> Path:
    """The in-progress checkpoint of one model."""
    return member_dir(runs, phase, member) / "checkpoint.npz"


def claim_path(runs: Path, phase: str, member: Member) -> Path:
    """The claim of one model."""
    return member_dir(runs, phase, member) / CLAIM_FILE


def load_model(
    cfg: DeepConfig, dataset: AbstractDataset, runs: str | os.PathLike[str], phase: str, member: Member
) -> tuple[AbstractVAE, Any, dict[str, Any]]:
    """A trained model, its controller state and its training record."""
    from linvae.deep.train import init_state

    state, static = init_state(cfg, dataset, [member], steps=1)
    like = jax.tree_util.tree_map(lambda a: a[0], (state.params, state.ctrl_state))
    (params, ctrl), _ = checkpoint.load(model_path(Path(runs), phase, member), like)
    record = read_json(member_dir(Path(runs), phase, member) / "train.json")
    return eqx.combine(params, static), ctrl, record


# ---------------------------------------------------------------------------------------------------
# What a folder holds
# ---------------------------------------------------------------------------------------------------


def runs_identity(cfg: DeepConfig, dataset: AbstractDataset, target: float | None = None) -> dict[str, Any]:
    """What makes the models of a runs folder comparable: the training fields of ``cfg``, the
    minibatch protocol, and the data: its source kind (real file or stand-in) and image fingerprint
    (:func:`linvae.deep.data.fingerprint`). Stored in ``<runs>/config.json``."""
    mine: dict[str, Any] = {k: getattr(cfg, k) for k in TRAINING_FIELDS}
    mine["sampler"] = SAMPLER
    mine["data_source"] = dataset.provenance.kind
    mine["data_fingerprint"] = fingerprint(dataset)
    if target is not None:
        mine["kl_target"] = float(target)
    return mine


def check_runs_config(
    cfg: DeepConfig, runs: str | os.PathLike[str], dataset: AbstractDataset, target: float | None = None
) -> None:
    """Refuse (``ValueError``) a runs folder whose ``config.json`` records another configuration,
    data source or image fingerprint; a new folder gets one. Called before anything is trained.

    Keys a folder written by an older linvae lacks are added, not refused."""
    mine = runs_identity(cfg, dataset, target)
    what = {"data_source": "data source", "data_fingerprint": "image fingerprint"}
    check_or_record(Path(runs) / "config.json", mine, "training configuration or data", what)


def check_runs(cfg: DeepConfig, runs: str | os.PathLike[str], dataset: AbstractDataset) -> None:
    """:func:`check_runs_config` for ``runs`` and, in a KL-target sweep, for each target's folder."""
    check_runs_config(cfg, runs, dataset)
    for target, folder in target_folders(cfg, runs):
        if target is not None:
            check_runs_config(cfg, folder, dataset, target)


# ---------------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------------


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


class Claims:
    """The claims one worker holds in a runs folder, kept alive by a heartbeat thread.

    Args:
        stale_s: heartbeat age (seconds) after which another worker's claim is taken over.
        heartbeat_s: seconds between heartbeats of this worker's claims.
    """

    def __init__(self, *, stale_s: float = STALE_S, heartbeat_s: float = HEARTBEAT_S) -> None:
        if stale_s <= heartbeat_s:
            raise ValueError(
                f"a claim must outlive several heartbeats: stale_s ({stale_s}) must exceed heartbeat_s"
                f" ({heartbeat_s})"
            )
        self.stale_s, self.heartbeat_s = float(stale_s), float(heartbeat_s)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.worker = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._held: dict[Path, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.taken_over: list[Path] = []

    # The record of one claim ------------------------------------------------------------------------

    def _record(self, nonce: str, what: str) -> dict[str, Any]:
        return {"worker": self.worker, "host": self.host, "pid": self.pid, "nonce": nonce, "what": what,
                "claimed": time.time()}  # fmt: skip

    @staticmethod
    def read(path: Path) -> dict[str, Any] | None:
        """The claim at ``path`` with its heartbeat time (``mtime``), or ``None`` when there is none."""
        try:
            st = path.stat()
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # Unreadable: treat it as a claim whose only evidence of life is its modification time.
            try:
                return {"nonce": None, "mtime": path.stat().st_mtime}
            except FileNotFoundError:
                return None
        record["mtime"] = st.st_mtime
        return record

    def is_stale(self, record: dict[str, Any], now: float | None = None) -> bool:
        """Whether a claim belongs to a dead worker: no heartbeat for ``stale_s``, or a process of
        this host that has gone."""
        now = time.time() if now is None else now
        if now - record["mtime"] > self.stale_s:
            return True
        if record.get("host") == self.host and isinstance(record.get("pid"), int):
            return record["pid"] != self.pid and not _pid_running(record["pid"])
        return False

    def holder(self, path: Path) -> str | None:
        """The worker holding a live claim at ``path`` (``None``: free or stale)."""
        record = self.read(path)
        if record is None or self.is_stale(record):
            return None
        return str(record.get("worker"))

    # Taking and giving back ------------------------------------------------------------------------

    def try_claim(self, path: Path, what: str = "") -> bool:
        """Claim ``path`` exclusively; a stale claim there is taken over. True if this worker now holds it."""
        path = Path(path)
        if path in self._held:
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        nonce = uuid.uuid4().hex
        tmp = path.with_name(f".{path.name}.{nonce}.tmp")
        tmp.write_text(json.dumps(self._record(nonce, what)))
        try:
            for _ in range(2):
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    if not self._take_over(path):
                        return False
                    continue
                with self._lock:
                    self._held[path] = nonce
                return True
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def _take_over(self, path: Path) -> bool:
        """Remove a stale claim at ``path`` so that it can be claimed again; False if it is live (or
        another worker removed it first)."""
        record = self.read(path)
        if record is None:
            return True  # released meanwhile: try again
        if not self.is_stale(record):
            return False
        tomb = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(path, tomb)
        except FileNotFoundError:
            return True
        moved = self.read(tomb)
        if moved is not None and moved.get("nonce") != record.get("nonce"):
            # Between reading and renaming, another worker took the claim over and claimed afresh: put
            # its live claim back (link fails only if yet another claim appeared; then leave that one).
            with contextlib.suppress(FileExistsError):
                os.link(tomb, path)
            tomb.unlink(missing_ok=True)
            return False
        tomb.unlink(missing_ok=True)
        self.taken_over.append(path)
        return True

    def release(self, path: Path) -> None:
        """Give a claim back (remove it if it is still this worker's)."""
        path = Path(path)
        with self._lock:
            nonce = self._held.pop(path, None)
        if nonce is None:
            return
        record = self.read(path)
        if record is not None and record.get("nonce") == nonce:
            path.unlink(missing_ok=True)

    def release_all(self) -> None:
        for path in list(self._held):
            self.release(path)

    def still_held(self, path: Path) -> bool:
        """Whether the claim at ``path`` is still this worker's (not taken over by another)."""
        record = self.read(Path(path))
        return record is not None and record.get("nonce") == self._held.get(Path(path))

    # The heartbeat ---------------------------------------------------------------------------------

    def beat(self) -> None:
        """Touch every claim this worker still holds (its heartbeat); a claim another worker has taken
        over is left alone, so that its heartbeat stays its new holder's."""
        with self._lock:
            held = list(self._held)
        for path in held:
            if self.still_held(path):
                with contextlib.suppress(FileNotFoundError):
                    os.utime(path)

    @contextlib.contextmanager
    def alive(self) -> Iterator[Claims]:
        """Run the heartbeat while the body runs; release every claim at the end (also on error)."""

        def loop() -> None:
            while not self._stop.wait(self.heartbeat_s):
                self.beat()

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="linvae-claims-heartbeat", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self.release_all()


def claimed_by_others(claims: Claims, paths: Sequence[Path]) -> list[Path]:
    """The paths of ``paths`` whose claims another live worker holds."""
    return [p for p in paths if p not in claims._held and claims.holder(p) is not None]
