r"""The MPI3D-like stand-in: a flat, clearly synthetic drawing with MPI3D-real's seven factors.

MPI3D-real photographs a robot arm holding an object (``mpi3d_real_sample*.gif``); that cannot be
reproduced, so this stand-in only keeps the factor structure, for smoke runs of the RGB pipeline:
a dark scene with a coloured rail (``background_color``) whose height follows ``camera_height``, a
two-joint grey arm rising from the bottom whose joints turn with ``horizontal_axis`` and
``vertical_axis`` (40 steps over +-60 degrees each), and at its tip a flat object of one of six
silhouettes (``object_shape``: cone, cube, cylinder, hexagonal, pyramid, sphere), two sizes and six
colours. Pixels are sampled at their centres without anti-aliasing.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Int, PRNGKeyArray, UInt8

from linvae.deep.data.dataset import STAND_IN, AbstractDataset, Batch, Provenance, uniform_factors
from linvae.deep.data.grid import MPI3D, FactorGrid

CANVAS = 64
OBJECT_RGB = (
    (0.92, 0.92, 0.92),
    (0.2, 0.7, 0.25),
    (0.85, 0.15, 0.12),
    (0.15, 0.3, 0.85),
    (0.5, 0.3, 0.15),
    (0.5, 0.5, 0.15),
)
RAIL_RGB = ((0.45, 0.35, 0.65), (0.25, 0.6, 0.5), (0.95, 0.55, 0.45))
SCENE_RGB = (0.06, 0.08, 0.07)
ARM_RGB = (0.35, 0.35, 0.37)
RAIL_ROW = (44.0, 38.0, 32.0)  # rail height on screen for camera top / center / bottom
ARM_BASE_ROW = (62.0, 56.0, 50.0)
UPPER_ARM, FOREARM, ARM_HALF_WIDTH = 13.0, 11.0, 1.6
OBJECT_RADIUS = (3.0, 5.0)  # small, large
_JOINT_RANGE = np.deg2rad(60.0)


def _segment(px: Array, py: Array, ax: Array, ay: Array, bx: Array, by: Array, half: float) -> Array:
    """Inside a thick segment (capsule) from a to b."""
    dx, dy = bx - ax, by - ay
    h = jnp.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    ex, ey = px - ax - h * dx, py - ay - h * dy
    return ex * ex + ey * ey <= half * half


def _polygon(qx: Array, qy: Array, sides: int, r: Array, phase: float) -> Array:
    """Inside a regular polygon of circumradius r centred at the origin (y up)."""
    inside = jnp.ones(qx.shape, bool)
    apothem = r * np.cos(np.pi / sides)
    for k in range(sides):
        a = phase + (2 * k + 1) * np.pi / sides
        inside = inside & (qx * np.float32(np.cos(a)) + qy * np.float32(np.sin(a)) <= apothem)
    return inside


def _silhouette(qx: Array, qy: Array, shape: Array, r: Array) -> Array:
    """The six object silhouettes, y up, centred at the origin."""
    cone = _polygon(qx / 0.7, qy, 3, r, -np.pi / 2 + np.pi / 3 - np.pi / 3)
    cube = _polygon(qx, qy, 4, r * 1.2, 0.0)
    cylinder = (jnp.abs(qx) <= 0.7 * r) & (jnp.abs(qy) <= 1.1 * r)
    hexagonal = _polygon(qx, qy, 6, r, 0.0)
    pyramid = _polygon(qx / 1.4, qy, 3, r, -np.pi / 2 + np.pi / 3 - np.pi / 3) | (
        (jnp.abs(qx) <= 1.2 * r) & (qy <= -0.35 * r) & (qy >= -0.55 * r)
    )
    sphere = qx * qx + qy * qy <= r * r
    options = (cone, cube, cylinder, hexagonal, pyramid, sphere)
    out = options[-1]
    for k in range(5):
        out = jnp.where(shape == k, options[k], out)
    return out


def render(factors: Int[Array, "n 7"]) -> UInt8[Array, "n 64 64 3"]:
    """Images of class indices (object_color, object_shape, object_size, camera_height,
    background_color, horizontal_axis, vertical_axis)."""
    f = jnp.asarray(factors).astype(jnp.int32)
    n = f.shape[0]

    def col(k: int) -> Array:
        return f[:, k].reshape(n, 1, 1)

    cells = jnp.arange(CANVAS, dtype=jnp.float32) + jnp.float32(0.5)
    px, py = cells.reshape(1, 1, CANVAS), cells.reshape(1, CANVAS, 1)
    height = col(3)
    rail_row = jnp.asarray(RAIL_ROW, jnp.float32)[height]
    base_row = jnp.asarray(ARM_BASE_ROW, jnp.float32)[height]
    # The rail: a thin elliptic arc across the scene.
    ring = jnp.abs(((px - 32.0) / 40.0) ** 2 + ((py - rail_row - 14.0) / 14.0) ** 2 - 1.0) <= 0.15
    ring = ring & (py <= rail_row + 14.0)
    a1 = (col(5).astype(jnp.float32) / 39.0 * 2.0 - 1.0) * np.float32(_JOINT_RANGE)
    a2 = (col(6).astype(jnp.float32) / 39.0 * 2.0 - 1.0) * np.float32(_JOINT_RANGE)
    bx, by = jnp.full_like(a1, 32.0), base_row
    jx, jy = bx + UPPER_ARM * jnp.sin(a1), by - UPPER_ARM * jnp.cos(a1)
    tx, ty = jx + FOREARM * jnp.sin(a1 + a2), jy - FOREARM * jnp.cos(a1 + a2)
    arm = _segment(px, py, bx, by, jx, jy, ARM_HALF_WIDTH) | _segment(px, py, jx, jy, tx, ty, ARM_HALF_WIDTH)
    r = jnp.asarray(OBJECT_RADIUS, jnp.float32)[col(2)]
    obj = _silhouette(px - tx, ty - py, col(1), r)
    rgb_obj = jnp.asarray(OBJECT_RGB, jnp.float32)[f[:, 0]].reshape(n, 1, 1, 3)
    rgb_rail = jnp.asarray(RAIL_RGB, jnp.float32)[f[:, 4]].reshape(n, 1, 1, 3)
    scene = jnp.asarray(SCENE_RGB, jnp.float32).reshape(1, 1, 1, 3)
    arm_rgb = jnp.asarray(ARM_RGB, jnp.float32).reshape(1, 1, 1, 3)
    # A dim floor gradient keeps the scene from being flat black, as in the photographs.
    shade = (0.6 + 0.4 * py / CANVAS)[..., None]
    img = scene * shade
    img = jnp.where(ring[..., None], rgb_rail, img)
    img = jnp.where(arm[..., None], arm_rgb, img)
    img = jnp.where(obj[..., None], rgb_obj, img)
    return jnp.round(jnp.clip(img, 0.0, 1.0) * 255.0).astype(jnp.uint8)


_render_jit = jax.jit(render)


class MPI3DLike(AbstractDataset):
    """Procedural, clearly synthetic stand-in for MPI3D-real (1,036,800-image grid)."""

    name: str = eqx.field(static=True, default="mpi3d")
    grid: FactorGrid = eqx.field(static=True, default=MPI3D)
    image_shape: tuple[int, int, int] = eqx.field(static=True, default=(CANVAS, CANVAS, 3))
    provenance: Provenance = eqx.field(
        static=True,
        default=Provenance(
            kind=STAND_IN, source="linvae.deep.data.arm.MPI3DLike (synthetic 2-D arm drawing)"
        ),
    )

    def sample_factors(self, key: PRNGKeyArray, n: int) -> Int[Array, "n K"]:
        """Uniform over the grid."""
        return uniform_factors(key, n, self.grid.sizes)

    def images(self, factors: Int[Array, "n K"]) -> UInt8[Array, "n H W C"]:
        """Drawn with :func:`render`."""
        return _render_jit(factors)

    def batch(self, key: PRNGKeyArray, n: int) -> Batch:
        """Uniform draw from the grid, drawn."""
        factors = self.sample_factors(key, n)
        return Batch(self.images(factors), factors)
