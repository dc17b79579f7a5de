r"""The sweep: the published two-phase protocol over a (β, λ, seed) grid, by any number of workers.

**Plan.** Phase ``beta``: one model per (β, seed) — and per KL target C of a controller sweep —,
``cfg.beta_steps`` steps from scratch at λ = 0. Phase ``lambda``: one model per (β, λ, seed),
``cfg.lambda_steps`` more steps from its phase-1 *parent* (β, seed) with a fresh Adam. Each model
is one task (:class:`Task`); a task is done when its ``model.npz`` exists.

**Workers.** :func:`train_sweep` is one worker: it repeatedly claims a group of ready tasks in the
runs folder (:class:`linvae.deep.runs.Claims`: exclusive-create claims with a heartbeat; a dead
worker's claim is taken over), trains the group under ``vmap`` with the models sharded over the
chosen devices, writes each model's results and gives its claims back, until no task is left that it
may take. A λ task is ready once its parent is done; a worker whose remaining tasks wait on parents
that other workers are training waits for them. Any number of workers can run the same command on
one runs folder (processes, ``--executor local`` jobs, SLURM jobs): every model is trained once.
``--shard i/N`` restricts a worker to the lineages (target, β, seed) with index ``i`` mod ``N``, for
schedulers that hand out indices (a SLURM array, an indexed Kubernetes job); claims still apply.

**Resume.** Every model checkpoints on its own (``<member>/checkpoint.npz``), so a resumed sweep
groups models freely — by the step their checkpoints are at, then by the group size that fits now
(other memory, device count, a grid extended by new β or seeds): each continues from its last
checkpoint, and its result is bit-identical to an uninterrupted run on CPU (the models of a group
never interact, and a model's batches and keys are functions of its seed and the global step only).

**Executors.** :func:`submit` starts ``jobs`` workers through `submitit
<https://github.com/facebookincubator/submitit>`_: ``"slurm"`` submits them to SLURM (partition, GPUs
per job, time limit, ...), ``"local"`` runs the same jobs as processes of this machine.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from linvae.deep import checkpoint
from linvae.deep.config import DeepConfig, validate
from linvae.deep.data import AbstractDataset, LinearGaussian, to_device
from linvae.deep.record import Member, code_revision, finite_or_none, member_dir, write_json
from linvae.deep.runs import (
    STALE_S,
    Claims,
    check_runs,
    checkpoint_path,
    claim_path,
    for_target,
    load_model,
    model_path,
    target_folders,
)
from linvae.deep.train import (
    HISTORY_FIELDS,
    PhaseResult,
    at_resolution,
    checkpoint_step,
    group_size,
    model_mesh,
    open_dataset,
    place_data,
    train_phase,
)

#: Seconds a worker sleeps before looking again for tasks that wait on other workers.
POLL_S = 2.0
PHASES = ("beta", "lambda")


# ---------------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------------


def beta_members(cfg: DeepConfig) -> list[Member]:
    """Models of the β-VAE phase: one per (β, seed), at λ = 0."""
    return [Member(float(b), 0.0, int(s)) for b in cfg.betas for s in cfg.seeds]


def lambda_members(cfg: DeepConfig) -> list[Member]:
    """Models of the λβ phase: one per (β, λ, seed)."""
    return [Member(float(b), float(lam), int(s)) for b in cfg.betas for lam in cfg.lambdas for s in cfg.seeds]


class Task(NamedTuple):
    """One model of a sweep: its phase, its (β, λ, seed), its KL target (``None`` outside a target
    sweep), the runs folder of that target, and its lineage (index of its (target, β, seed))."""

    phase: str
    member: Member
    target: float | None
    runs: Path
    lineage: int

    @property
    def folder(self) -> Path:
        return member_dir(self.runs, self.phase, self.member)

    @property
    def claim(self) -> Path:
        return claim_path(self.runs, self.phase, self.member)

    @property
    def checkpoint(self) -> Path:
        return checkpoint_path(self.runs, self.phase, self.member)

    def done(self) -> bool:
        return model_path(self.runs, self.phase, self.member).exists()

    @property
    def parent(self) -> Task | None:
        """The β-phase model a λ-phase model continues."""
        if self.phase == "beta":
            return None
        return self._replace(phase="beta", member=self.member._replace(lam=0.0))

    def label(self) -> str:
        tag = "" if self.target is None else f" C={self.target:g}"
        m = self.member
        return f"{self.phase} beta={m.beta:g} lambda={m.lam:g} seed={m.seed}{tag}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = self.member.to_dict()
        if self.target is not None:
            d["kl_target"] = self.target
        return d


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` as ``(i, N)`` with ``0 <= i < N`` (``ValueError`` otherwise); ``None`` for ``None``."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must read i/N with integers, e.g. 0/4; got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard i/N needs N >= 1 and 0 <= i < N; got {text!r}")
    return i, n


def plan(cfg: DeepConfig, runs: str | os.PathLike[str], shard: tuple[int, int] | None = None) -> list[Task]:
    """Every task of the grid (β phase first), or those of shard ``(i, N)``: the lineages
    (target, β, seed) whose index is ``i`` mod ``N``, with all their λ continuations."""
    tasks = []
    lineage: dict[tuple[float | None, float, int], int] = {}
    for target, folder in target_folders(cfg, runs):
        for mb in beta_members(cfg):
            lineage[(target, mb.beta, mb.seed)] = len(lineage)
            tasks.append(Task("beta", mb, target, folder, lineage[(target, mb.beta, mb.seed)]))
    if cfg.lambda_steps > 0:
        for target, folder in target_folders(cfg, runs):
            for mb in lambda_members(cfg):
                tasks.append(Task("lambda", mb, target, folder, lineage[(target, mb.beta, mb.seed)]))
    if shard is not None:
        i, n = shard
        tasks = [t for t in tasks if t.lineage % n == i]
    return tasks


def progress_of(cfg: DeepConfig, runs: str | os.PathLike[str]) -> tuple[int, int]:
    """``(done, total)`` models of the whole grid in ``runs``."""
    tasks = plan(cfg, runs)
    return sum(t.done() for t in tasks), len(tasks)


def select_devices(spec: int | str | None = None) -> list[jax.Device]:
    """The devices a worker shards its groups over: all local devices (``None`` or ``"all"``), or
    the first ``N`` (``ValueError`` when fewer are visible)."""
    devices = jax.local_devices()
    if spec is None or spec == "all":
        return devices
    n = int(spec)
    if not 1 <= n <= len(devices):
        raise ValueError(
            f"--devices {n}: this process sees {len(devices)} device(s) ({devices[0].platform});"
            f" choose 1..{len(devices)} or all"
        )
    return devices[:n]


# ---------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------


def _slice(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


def write_results(
    cfg: DeepConfig,
    dataset: AbstractDataset,
    task: Task,
    i: int,
    result: PhaseResult,
    *,
    group: Sequence[Task],
    steps_total: int,
    devices: Sequence[jax.Device],
    worker: str,
    width: int | None = None,
) -> None:
    """Write model ``i`` of a trained group: ``train.json``, then ``model.npz`` (its presence means
    done, so a worker killed in between leaves the model to be trained again), then drop its checkpoint.
    ``width`` is the group's padded size (what a model's numbers depend on; see ``train_phase``)."""
    st = result.state
    window, count, failed = np.asarray(st.window[i]), int(st.count[i]), int(st.failed_at[i])
    means = window / max(count, 1)
    record = {
        "member": task.to_dict(),
        "phase": task.phase,
        "steps": steps_total,
        "status": "ok" if failed < 0 else "failed",
        "failed_at": failed if failed >= 0 else None,
        "window": {
            "steps": count,
            **{k: (finite_or_none(means[j]) if count else None) for j, k in enumerate(("nll", "kl", "l2"))},
        },
        "history": {
            "step": result.history_steps.tolist(),
            **{k: [finite_or_none(v) for v in result.history[:, i, j]] for j, k in enumerate(HISTORY_FIELDS)},
        },
        "group_size": len(group),
        "group_width": len(group) if width is None else width,
        "group": [t.to_dict() for t in group],
        "wall_s": result.wall_s,
        "resumed_from": result.resumed_from,
        "device": str(devices[0]),
        "devices": [str(d) for d in devices],
        "worker": worker,
        "config": for_target(cfg, task.target).to_dict(),
        "provenance": dataset.provenance.to_dict(),
        "revision": code_revision(),
    }
    write_json(task.folder / "train.json", record)
    checkpoint.save(
        model_path(task.runs, task.phase, task.member),
        (_slice(st.params, i), _slice(st.ctrl_state, i)),
        {"member": task.to_dict()},
    )
    task.checkpoint.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------
# One worker
# ---------------------------------------------------------------------------------------------------


def _resume_step(cfg: DeepConfig, task: Task) -> int | None:
    start, steps = (0, cfg.beta_steps) if task.phase == "beta" else (cfg.beta_steps, cfg.lambda_steps)
    return checkpoint_step(
        task.checkpoint,
        phase=task.phase,
        member=task.member,
        start_step=start,
        steps=steps,
        target=task.target,
    )


def _claim_group(cfg: DeepConfig, claims: Claims, ready: list[Task], size: int) -> list[Task]:
    """Claim up to ``size`` tasks of ``ready`` (one phase) whose checkpoints are at the same step:
    models with the most advanced checkpoints first, fresh ones last."""
    at = {t: _resume_step(cfg, t) for t in ready}
    order = sorted(ready, key=lambda t: -1 if at[t] is None else -at[t] - 1)
    got: list[Task] = []
    cohort: int | None | str = "unset"
    for t in order:
        if cohort != "unset" and at[t] != cohort:
            continue
        if not claims.try_claim(t.claim, t.label()):
            continue
        if t.done():  # finished by another worker between the listing and the claim
            claims.release(t.claim)
            continue
        now = _resume_step(cfg, t)  # read again: a worker that held it before may have checkpointed since
        if cohort == "unset":
            cohort = now
        elif now != cohort:
            claims.release(t.claim)
            continue
        got.append(t)
        if len(got) == size:
            break
    return got


def train_sweep(
    cfg: DeepConfig,
    runs: str | os.PathLike[str],
    *,
    dataset: AbstractDataset | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    devices: Sequence[jax.Device] | None = None,
    shard: tuple[int, int] | None = None,
    stale_s: float = STALE_S,
    poll_s: float = POLL_S,
    claims: Claims | None = None,
) -> dict[str, int]:
    """Train, as one worker, every model of the grid missing from ``runs`` that no other worker is
    training (resumable; safe to run in any number of processes on one folder).

    Args:
        cfg: the configuration (validated here, before anything is trained).
        runs: the runs folder.
        dataset: the data set; default :func:`~linvae.deep.train.open_dataset`.
        log: message sink (default stderr).
        progress: draw progress bars.
        devices: the devices each group is sharded over (default all local devices).
        shard: ``(i, N)``: only the lineages of shard i of N (:func:`plan`).
        stale_s: heartbeat age after which another worker's claim is taken over.
        poll_s: seconds between looks at tasks that wait on other workers.
        claims: this worker's claims (default a new :class:`~linvae.deep.runs.Claims`).

    Returns:
        Number of models this worker trained in each phase (over all targets).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    validate(cfg)
    dataset = open_dataset(cfg) if dataset is None else at_resolution(cfg, dataset)
    validate(cfg, num_images=_num_images(dataset), data_dim=math.prod(dataset.image_shape))
    runs = Path(runs)
    check_runs(cfg, runs, dataset)
    devices = select_devices() if devices is None else list(devices)
    # The images go to every device once, for every group of both phases.
    dataset = place_data(to_device(dataset), model_mesh(devices))
    tasks = plan(cfg, runs, shard)
    claims = Claims(stale_s=stale_s) if claims is None else claims
    trained = {"beta": 0, "lambda": 0}
    compiled: dict[str, dict[Any, Any]] = {p: {} for p in PHASES}
    sizes: dict[str, int] = {}
    groups = 0
    waited = False
    with claims.alive():
        while True:
            pending = [t for t in tasks if not t.done()]
            if not pending:
                break
            group: list[Task] = []
            for phase in PHASES:
                ready = [t for t in pending if t.phase == phase and (t.parent is None or t.parent.done())]
                ready = [t for t in ready if claims.holder(t.claim) is None]
                if not ready:
                    continue
                if phase not in sizes:
                    sizes[phase] = group_size(cfg, dataset, len(tasks), devices)
                group = _claim_group(cfg, claims, ready, sizes[phase])
                if group:
                    break
            if group:
                waited = False
                groups += 1
                _train_group(
                    cfg,
                    dataset,
                    group,
                    claims,
                    devices,
                    compiled[group[0].phase],
                    groups,
                    log,
                    progress,
                    sizes[group[0].phase],
                )
                trained[group[0].phase] += sum(1 for t in group if t.done())
                continue
            # Nothing to take now. Wait while some task waits on a parent another worker is training.
            blocked = [t for t in pending if t.parent is not None and not t.parent.done()]
            if blocked:
                if not waited:
                    log(
                        f"{cfg.dataset}: {len(blocked)} lambda-beta model(s) wait on beta-VAE models that other"
                        " workers are training; waiting"
                    )
                    waited = True
                time.sleep(poll_s)
                continue
            log(
                f"{cfg.dataset}: the {len(pending)} model(s) left are being trained by other workers"
                f" ({', '.join(sorted({str(claims.holder(t.claim)) for t in pending}))}); this worker stops"
            )
            break
    return trained


def _train_group(
    cfg: DeepConfig,
    dataset: AbstractDataset,
    group: list[Task],
    claims: Claims,
    devices: Sequence[jax.Device],
    compiled: dict[Any, Any],
    index: int,
    log: Callable[[str], None],
    progress: bool,
    size: int,
) -> None:
    phase = group[0].phase
    members = [t.member for t in group]
    targets = None if group[0].target is None else [float(t.target) for t in group]  # type: ignore[arg-type]
    params = ctrl = None
    failed_before = None
    if phase == "beta":
        start, steps, what = 0, cfg.beta_steps, "beta-VAE"
    else:
        start, steps, what = cfg.beta_steps, cfg.lambda_steps, "lambda-beta"
        parents = [
            load_model(for_target(cfg, t.target), dataset, t.runs, "beta", t.parent.member)  # type: ignore[union-attr]
            for t in group
        ]
        params = _stack([eqx.filter(model, eqx.is_array) for model, _, _ in parents])
        ctrl = _stack([c for _, c, _ in parents])
        # A model whose beta-VAE phase failed cannot be continued: its failure is carried over.
        failed_before = [
            rec["failed_at"] if rec["status"] != "ok" and rec["failed_at"] is not None else -1
            for _, _, rec in parents
        ]
    label = f"{cfg.dataset} {what} group {index} ({len(group)} model(s), {len(devices)} device(s))"
    try:
        res = train_phase(
            cfg, dataset, members, phase=phase, start_step=start, steps=steps, params=params, ctrl_state=ctrl,
            targets=targets, checkpoints=[t.checkpoint for t in group], devices=devices, label=label, log=log,
            progress=progress, compiled=compiled, pad_to=size,
            owned=lambda: [claims.still_held(t.claim) for t in group],
        )  # fmt: skip
        if failed_before is not None and any(f >= 0 for f in failed_before):
            fa = np.where(np.asarray(failed_before) >= 0, failed_before, np.asarray(res.state.failed_at))
            res = res._replace(state=res.state._replace(failed_at=jnp.asarray(fa, jnp.int32)))
        for i, t in enumerate(group):
            if not claims.still_held(t.claim):
                log(
                    f"{label}: the claim of {t.label()} was taken over by another worker; its results are theirs"
                )
                continue
            write_results(
                cfg, dataset, t, i, res, group=group, steps_total=start + steps, devices=devices,
                worker=claims.worker, width=size,
            )  # fmt: skip
    finally:
        for t in group:
            claims.release(t.claim)


def _num_images(dataset: AbstractDataset) -> int | None:
    """Number of distinct images, or ``None`` for an unbounded generator (LinearGaussian)."""
    if isinstance(dataset, LinearGaussian):
        return None
    return int(dataset.num_images)


# ---------------------------------------------------------------------------------------------------
# Executors: submitit (SLURM, or local processes)
# ---------------------------------------------------------------------------------------------------

EXECUTORS = ("local", "slurm")


class SlurmOptions(NamedTuple):
    """What a SLURM job asks for (``None``: the cluster's default)."""

    partition: str | None = None
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    time_min: int | None = None
    account: str | None = None
    qos: str | None = None


def submit(
    fn: Callable[..., Any],
    args: Sequence[Any],
    *,
    executor: str,
    jobs: int,
    folder: str | os.PathLike[str],
    name: str = "linvae-deep",
    slurm: SlurmOptions = SlurmOptions(),  # noqa: B008 (an immutable NamedTuple)
) -> list[Any]:
    """Start ``jobs`` workers, each calling ``fn(*args)``, with submitit; returns the submitit jobs.

    ``executor="slurm"`` submits them to SLURM (one job array of ``jobs`` tasks) with the options of
    ``slurm``; ``"local"`` runs them as processes of this machine (submitit's ``LocalExecutor``).
    Logs and submission files go to ``folder`` (``%j`` is the job id).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"--executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1; got {jobs}")
    try:
        import submitit
    except ImportError:
        raise ImportError(
            "--executor needs submitit (pip install 'linvae[deep]' or pip install submitit); without it, start"
            " the same command in several processes, or with --shard i/N"
        ) from None
    folder = Path(folder)
    if executor == "local":
        ex: Any = submitit.LocalExecutor(folder=str(folder / "%j"))
        params: dict[str, Any] = {"timeout_min": slurm.time_min or 60 * 24 * 7}
        if slurm.gpus_per_job:
            params["gpus_per_node"] = slurm.gpus_per_job
    else:
        ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm")
        params = {"name": name, "slurm_array_parallelism": jobs, "nodes": 1, "tasks_per_node": 1}
        for key, value in (
            ("slurm_partition", slurm.partition), ("gpus_per_node", slurm.gpus_per_job),
            ("cpus_per_task", slurm.cpus_per_job), ("mem_gb", slurm.mem_gb), ("timeout_min", slurm.time_min),
            ("slurm_account", slurm.account), ("slurm_qos", slurm.qos),
        ):  # fmt: skip
            if value is not None:
                params[key] = value
    ex.update_parameters(**params)
    if executor == "slurm":
        return list(ex.map_array(fn, *[[a] * jobs for a in args]))
    return [ex.submit(fn, *args) for _ in range(jobs)]
