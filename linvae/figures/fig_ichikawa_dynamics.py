r"""``ichikawa-dynamics``: high-dimensional learning dynamics of the [IH23] linear VAE
(docs/theory.md §6, T22–T24).

Spiked data with ρ = η = 1 (signal eigenvalue Λ = 2), fixed decoder variance 1, online SGD with learning
rate τ = 0.1. Panels: (a) :math:`\varepsilon_g(t)` of the order-parameter ODE (line) vs online SGD at
several N
(markers; fluctuations shrink like :math:`N^{-1/2}`); (b) stationary :math:`\varepsilon_g` vs β: the τ → 0
closed
form :math:`(\sqrt\rho - \sqrt{\Lambda - \beta})^2` (line), zero at β = η and equal to ρ beyond the collapse
threshold :math:`\beta_c = \rho + \eta`, with long-time ODE values (markers); (c) a superfluous latent
(M = 2, M* = 1) fits the bulk with :math:`Q = \eta - \beta` iff β < η (line) vs the ODE (markers); (d) KL
annealing β(t) = β tanh(γt): time to converge vs γ, against constant β.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from linvae.figures import Figure, style
from linvae.numeric._precision import float64

RHO, ETA, TAU = 1.0, 1.0, 0.1
BETA_DYN = 0.5
M0, MT0, SIGMA0 = 0.3, 0.3, 0.3


def _op0_scalar_expected(ich):
    """Expected order parameters of :func:`online_sgd`'s start (N → ∞), as (1, 1) matrices."""
    f = lambda x: jnp.asarray(x, jnp.float64).reshape(1, 1)  # noqa: E731
    return ich.OrderParams(
        f(M0), f(MT0), f(M0**2 + SIGMA0**2), f(MT0**2 + SIGMA0**2), f(M0 * MT0), jnp.ones((1,), jnp.float64)
    )


@float64
def compute(fast: bool) -> dict[str, Any]:
    from linvae.numeric import ichikawa as ich

    out: dict[str, Any] = {
        "config": {
            "rho": RHO,
            "eta": ETA,
            "tau": TAU,
            "beta_dynamics": BETA_DYN,
            "init": {"m0": M0, "mt0": MT0, "sigma0": SIGMA0},
        }
    }
    # (a) ODE vs online SGD.
    t1 = 10.0 if fast else 30.0
    saves = 20 if fast else 60
    Ns = (50, 200) if fast else (100, 400, 1600)
    seeds = 2 if fast else 4
    ts = np.linspace(0.0, t1, saves + 1)
    ode = ich.integrate_ode(_op0_scalar_expected(ich), ts[1:], rho=RHO, eta=ETA, beta=BETA_DYN, tau=TAU)
    eps_ode = np.concatenate(
        [
            [float(ich.generalisation_error(_op0_scalar_expected(ich), RHO)[()])],
            np.asarray(ich.generalisation_error(ode, RHO)),
        ]
    )
    sims = []
    for N in Ns:
        sim = ich.online_sgd(
            N,
            t1=t1,
            saves=saves,
            key=N,
            seeds=seeds,
            rho=RHO,
            eta=ETA,
            beta=BETA_DYN,
            tau=TAU,
            m0=M0,
            mt0=MT0,
            sigma0=SIGMA0,
        )
        eps = np.asarray(ich.generalisation_error(sim.order, RHO))  # (seeds, T+1)
        sims.append({"N": N, "eps": eps, "sup_error": float(np.max(np.abs(eps - eps_ode[None])))})
    out["dynamics"] = {"t": ts, "eps_ode": eps_ode, "sgd": sims, "seeds": seeds}
    # (b) stationary eps_g vs beta (tau -> 0: the ODE without SGD-noise terms).
    beta_line = np.linspace(0.02, 3.0, 150)
    theory = np.array([ich.steady_generalisation_error(RHO, ETA, b) for b in beta_line])
    bmk = (0.25, 1.0, 1.75, 2.5) if fast else (0.1, 0.5, 1.0, 1.5, 1.8, 2.3, 2.8)
    T_long = 400.0 if fast else 1500.0
    # Saved on a grid of panel (a)'s length, so that one compiled solver serves (a) and (b).
    ts_long = np.linspace(0.0, T_long, saves + 1)[1:]
    stat = []
    for b in bmk:
        op = ich.integrate_ode(
            _op0_scalar_expected(ich), ts_long, rho=RHO, eta=ETA, beta=b, tau=TAU, noise=False
        )
        stat.append(float(np.asarray(ich.generalisation_error(op, RHO))[-1]))
    out["stationary"] = {
        "beta": beta_line,
        "eps_theory": theory,
        "beta_markers": bmk,
        "eps_ode": stat,
        "t_long": T_long,
        "threshold": ich.collapse_threshold(RHO, ETA),
    }
    # (c) superfluous latent, M = 2, M* = 1.
    bsl = (0.3, 0.7, 1.4) if fast else (0.1, 0.3, 0.5, 0.7, 0.85, 1.2, 1.6)
    op2 = ich.OrderParams(
        jnp.array([[M0], [0.0]]),
        jnp.array([[MT0], [0.0]]),
        jnp.diag(jnp.array([M0**2 + SIGMA0**2, SIGMA0**2])),
        jnp.diag(jnp.array([MT0**2 + SIGMA0**2, SIGMA0**2])),
        jnp.diag(jnp.array([M0 * MT0, 0.05])),
        jnp.ones((2,)),
    )
    q_extra, v_extra = [], []
    for b in bsl:
        op = ich.integrate_ode(op2, ts_long, rho=RHO, eta=ETA, beta=b, tau=TAU, noise=False)
        Q = np.asarray(op.Q)[-1]
        m = np.asarray(op.m)[-1, :, 0]
        extra = int(np.argmin(np.abs(m)))  # the latent without the signal
        q_extra.append(float(Q[extra, extra]))
        v_extra.append(float(np.asarray(op.v)[-1, extra]))
    sl_line = np.linspace(0.02, 2.0, 120)
    out["superfluous"] = {
        "beta": sl_line,
        "Q_theory": [ich.superfluous_latent(ETA, b)[0] for b in sl_line],
        "v_theory": [ich.superfluous_latent(ETA, b)[1] for b in sl_line],
        "beta_markers": bsl,
        "Q_ode": q_extra,
        "v_ode": v_extra,
    }
    # (d) KL annealing.
    gammas = np.geomspace(0.003, 3.0, 5 if fast else 12)
    ann = ich.annealing_times(
        gammas,
        rel_band=1e-2,
        rho=RHO,
        eta=ETA,
        beta=1.0,
        tau=TAU,
        schedule="tanh",
        t1=600.0 if fast else 2000.0,
        num_times=1201 if fast else 4001,
    )
    out["annealing"] = {
        "gammas": gammas,
        "times": np.asarray(ann.times),
        "constant_time": ann.constant_time,
        "beta_final": 1.0,
        "rel_band": 1e-2,
    }
    return out


def plot(data: dict[str, Any]):
    fig, axes = style.figure(1, 4, width=3.0, height=2.9)
    a, b, c, d = axes[0]
    dyn = data["dynamics"]
    t = style.arr(dyn["t"])
    a.plot(t, style.arr(dyn["eps_ode"]), color="k", lw=1.6, label="ODE (N → ∞)", zorder=3)
    col = style.shades(len(dyn["sgd"]), lo=0.25, hi=0.85)
    every = max(1, len(t) // 20)
    for i, s in enumerate(dyn["sgd"]):
        eps = style.arr(s["eps"])
        a.plot(
            t[i::every],
            eps.mean(0)[i::every],
            ls="none",
            marker=style.MARKERS[i],
            color=col[i],
            ms=3.5,
            label=f"SGD, N = {s['N']} (sup err {s['sup_error']:.2f})",
        )
    a.set_xlabel("time t = steps / N")
    a.set_ylabel(r"generalisation error $\varepsilon_g$")
    a.set_title(f"ε_g(t), β = {data['config']['beta_dynamics']:g}")
    a.legend(fontsize=6.5)
    st = data["stationary"]
    b.plot(style.arr(st["beta"]), style.arr(st["eps_theory"]), color="k", lw=1.5, label="closed form (τ → 0)")
    b.plot(
        style.arr(st["beta_markers"]),
        style.arr(st["eps_ode"]),
        ls="none",
        marker="o",
        color=col[-1],
        ms=5,
        mfc="none",
        mew=1.5,
        label=f"ODE at t = {st['t_long']:g}",
    )
    b.axvline(st["threshold"], color="0.4", ls=":", label=r"$\beta_c = \rho + \eta$")
    b.axvline(data["config"]["eta"], color="0.7", ls="--", lw=1, label="β = η")
    b.set_xlabel("β")
    b.set_ylabel(r"stationary $\varepsilon_g$")
    b.set_title("collapse threshold")
    b.legend(fontsize=6.5)
    sl = data["superfluous"]
    c.plot(
        style.arr(sl["beta"]), style.arr(sl["Q_theory"]), color="k", lw=1.5, label=r"$Q = (\eta - \beta)_+$"
    )
    c.plot(
        style.arr(sl["beta_markers"]),
        style.arr(sl["Q_ode"]),
        ls="none",
        marker="s",
        color=col[-1],
        ms=5,
        mfc="none",
        mew=1.5,
        label="ODE, extra latent",
    )
    c.set_xlabel("β")
    c.set_ylabel(r"$Q$ of the superfluous latent")
    c.set_title("superfluous latent (M = 2, M* = 1)")
    c.legend(fontsize=6.5)
    an = data["annealing"]
    times = style.arr(an["times"])
    d.plot(
        style.arr(an["gammas"]),
        np.where(np.isfinite(times), times, np.nan),
        ls="none",
        marker="o",
        color=col[0],
        ms=5,
        label="tanh annealing",
    )
    if an["constant_time"] is not None:
        d.axhline(an["constant_time"], color="0.4", ls="--", label="constant β (numeric)")
    d.set_xscale("log")
    d.set_xlabel("annealing speed γ")
    d.set_ylabel("time to converge (t units)")
    d.set_title(f"KL annealing to β = {an['beta_final']:g}")
    d.legend(fontsize=6.5)
    fig.suptitle(
        "Ichikawa–Hukushima dynamics: ρ = η = 1, τ = 0.1 (lines: theory / ODE limit; markers: numerics)"
    )
    return fig


FIGURE = Figure(
    slug="ichikawa-dynamics",
    description="eps_g(t): ODE vs online SGD at several N; stationary eps_g vs beta with the threshold "
    "rho+eta; "
    "superfluous latent; KL annealing time vs gamma",
    compute=compute,
    plot=plot,
)
