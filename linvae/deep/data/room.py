r"""The Shapes3D-like stand-in: one object in a room, ray-cast analytically in JAX.

Scene (world units, y up): the floor :math:`y = 0`; a back wall and two side walls of height
``WALL_HEIGHT``, meeting at 90 degrees in two corners about 30 degrees either side of the object as
seen from it; a pale sky above the walls; the object standing at the origin. The camera orbits the
object at azimuth :math:`\varphi \in \mathrm{linspace}(-30, 30, 15)` degrees (the ``orientation``
factor): at the ends of the sweep a corner stands behind the object, near :math:`\varphi = 0` only the
back wall is in view, as in ``3dshapes.gif``. Primitives, intersected in closed form: planes (floor,
walls), an axis-aligned box (cube), a capped cylinder, a sphere and a capsule (a cylinder between two
hemispheres), each of half-width :math:`0.6\,s`, :math:`s \in \mathrm{linspace}(0.75, 1.25, 8)`.

Shading is Lambertian under a point light above, left of and in front of the object, plus an ambient
term; floor and wall points whose ray to the light meets the object get only the ambient term (the
drop shadow). Colours are fully saturated hues :math:`h \in \{0, 0.1, \dots, 0.9\}` (HSV value 1).

Because Lambertian colour is albedo times irradiance and the irradiance depends only on
(scale, shape, orientation), the geometry is ray-cast once on a :math:`2 \times 2` sub-pixel grid for
all 8 x 4 x 15 = 480 such triples: :func:`coverage` gives, per pixel, the shade-weighted coverage of
floor, walls, object and sky. An image is then those four weights times the four colours, which is
exact for this scene and fast (:func:`compose`); :func:`render_direct` ray-casts batches of images
without the table and agrees with it. It will never match Shapes3D's pixels; it has its factors.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Float, Int, PRNGKeyArray, UInt8

from linvae.deep.data.dataset import STAND_IN, AbstractDataset, Batch, Provenance, uniform_factors
from linvae.deep.data.grid import SHAPES3D, FactorGrid

CANVAS = 64
SUBSAMPLES = 2
FOV_DEGREES = 36.0
CAMERA_DISTANCE = 7.0
CAMERA_HEIGHT = 1.0
LOOK_AT_HEIGHT = 1.06
BACK_WALL = 11.0
SIDE_WALL = 6.3
WALL_HEIGHT = 4.2
LIGHT = (-5.0, 7.0, 7.0)
AMBIENT = 0.45
DIFFUSE = 0.8
SHADOW = 0.0  # fraction of the direct light that survives in the shadow
HALF_WIDTH = 0.6
SKY_RGB = (0.6, 0.886, 0.976)
_FAR = 1e6
_EPS = 1e-4

Vec = tuple[Array, Array, Array]


def _dot(a: Vec, b: Vec) -> Array:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _safe(d: Array) -> Array:
    """A ray direction component bounded away from 0, for divisions."""
    return jnp.where(jnp.abs(d) < 1e-12, jnp.float32(1e-12), d)


def _sphere(o: Vec, d: Vec, cy: Array, r: Array) -> tuple[Array, Vec]:
    """Nearest hit of a sphere centred at (0, cy, 0); t = FAR on a miss. d is unit length."""
    oc = (o[0], o[1] - cy, o[2])
    b = _dot(oc, d)
    c = _dot(oc, oc) - r * r
    disc = b * b - c
    t = -b - jnp.sqrt(jnp.maximum(disc, 0.0))
    hit = (disc >= 0) & (t > _EPS)
    t = jnp.where(hit, t, _FAR)
    n = ((o[0] + t * d[0]) / r, (o[1] + t * d[1] - cy) / r, (o[2] + t * d[2]) / r)
    return t, n


def _cylinder_side(o: Vec, d: Vec, r: Array, y0: Array, y1: Array) -> tuple[Array, Vec]:
    """Nearest hit of the open side of a vertical cylinder of radius r between heights y0 and y1."""
    a = d[0] * d[0] + d[2] * d[2]
    a = jnp.maximum(a, 1e-12)
    b = o[0] * d[0] + o[2] * d[2]
    c = o[0] * o[0] + o[2] * o[2] - r * r
    disc = b * b - a * c
    t = (-b - jnp.sqrt(jnp.maximum(disc, 0.0))) / a
    y = o[1] + t * d[1]
    hit = (disc >= 0) & (t > _EPS) & (y >= y0) & (y <= y1)
    t = jnp.where(hit, t, _FAR)
    zero = jnp.zeros_like(t)
    n = ((o[0] + t * d[0]) / r, zero, (o[2] + t * d[2]) / r)
    return t, n


def _disc_top(o: Vec, d: Vec, r: Array, y: Array) -> tuple[Array, Vec]:
    """Nearest hit of the horizontal disc of radius r at height y, seen from above."""
    t = (y - o[1]) / _safe(d[1])
    x, z = o[0] + t * d[0], o[2] + t * d[2]
    hit = (t > _EPS) & (x * x + z * z <= r * r) & (d[1] < 0)
    t = jnp.where(hit, t, _FAR)
    zero, one = jnp.zeros_like(t), jnp.ones_like(t)
    return t, (zero, one, zero)


def _box(o: Vec, d: Vec, a: Array) -> tuple[Array, Vec]:
    """Nearest hit of the box [-a, a] x [0, 2a] x [-a, a] (slab method)."""
    lo = (-a, jnp.zeros_like(a), -a)
    hi = (a, 2 * a, a)
    t_near, t_far = [], []
    for k in range(3):
        inv = 1.0 / _safe(d[k])
        t1, t2 = (lo[k] - o[k]) * inv, (hi[k] - o[k]) * inv
        t_near.append(jnp.minimum(t1, t2))
        t_far.append(jnp.maximum(t1, t2))
    tn = jnp.maximum(jnp.maximum(t_near[0], t_near[1]), t_near[2])
    tf = jnp.minimum(jnp.minimum(t_far[0], t_far[1]), t_far[2])
    hit = (tf >= tn) & (tn > _EPS)
    t = jnp.where(hit, tn, _FAR)
    n = tuple(jnp.where(tn == t_near[k], -jnp.sign(d[k]), 0.0).astype(jnp.float32) for k in range(3))
    return t, n  # type: ignore[return-value]


def _nearest(*hits: tuple[Array, Vec]) -> tuple[Array, Vec]:
    t, n = hits[0]
    for t2, n2 in hits[1:]:
        closer = t2 < t
        n = tuple(jnp.where(closer, b, a) for a, b in zip(n, n2, strict=True))  # type: ignore[assignment]
        t = jnp.minimum(t, t2)
    return t, n


def object_hit(o: Vec, d: Vec, shape: Array, scale: Array) -> tuple[Array, Vec]:
    """Nearest hit of the object (shape 0 cube, 1 cylinder, 2 sphere, 3 capsule) of half-width 0.6 scale.

    ``shape`` may be traced: all four are intersected and the right one selected, so that one
    compiled function serves every shape.
    """
    a = HALF_WIDTH * scale
    top = 3.0 * a  # a capsule 4a tall: a cylinder of height 2a between two hemispheres
    hits = (
        _box(o, d, a),
        _nearest(_cylinder_side(o, d, a, 0.0 * a, 2 * a), _disc_top(o, d, a, 2 * a)),
        _sphere(o, d, a, a),
        _nearest(_cylinder_side(o, d, a, a, top), _sphere(o, d, a, a), _sphere(o, d, top, a)),
    )
    t, n = hits[3]
    for k in range(3):
        t = jnp.where(shape == k, hits[k][0], t)
        n = tuple(jnp.where(shape == k, hk, nk) for hk, nk in zip(hits[k][1], n, strict=True))  # type: ignore[assignment]
    return t, n


def _camera_rays(azimuth: Array) -> tuple[Vec, Vec]:
    """Ray origins and unit directions, (64 * SUBSAMPLES,) ** 2 grid, for camera azimuth in radians."""
    m = CANVAS * SUBSAMPLES
    centres = (jnp.arange(m, dtype=jnp.float32) + 0.5) / m * 2.0 - 1.0
    half = jnp.float32(np.tan(np.deg2rad(FOV_DEGREES) / 2))
    u = (centres * half).reshape(1, m)
    v = (-centres * half).reshape(m, 1)
    eye = (CAMERA_DISTANCE * jnp.sin(azimuth), jnp.float32(CAMERA_HEIGHT), CAMERA_DISTANCE * jnp.cos(azimuth))
    f = (-eye[0], LOOK_AT_HEIGHT - eye[1], -eye[2])
    fn = jnp.sqrt(_dot(f, f))
    f = (f[0] / fn, f[1] / fn, f[2] / fn)
    # right = f x up, up' = right x f
    r = (-f[2], jnp.float32(0.0), f[0])
    rn = jnp.sqrt(_dot(r, r))
    r = (r[0] / rn, r[1] / rn, r[2] / rn)
    up = (r[1] * f[2] - r[2] * f[1], r[2] * f[0] - r[0] * f[2], r[0] * f[1] - r[1] * f[0])
    d = tuple(u * r[k] + v * up[k] + f[k] for k in range(3))
    dn = jnp.sqrt(_dot(d, d))
    d = (d[0] / dn, d[1] / dn, d[2] / dn)
    o = tuple(jnp.broadcast_to(e, d[0].shape) for e in eye)
    return o, d  # type: ignore[return-value]


def _room_hit(o: Vec, d: Vec) -> tuple[Array, Vec, Array]:
    """Floor or wall hit: t, normal, and whether it is a wall point above the wall top (sky)."""
    t_floor = jnp.where(d[1] < 0, -o[1] / _safe(d[1]), _FAR)
    zero, one = jnp.zeros_like(t_floor), jnp.ones_like(t_floor)
    walls = []
    # back wall z = -BACK_WALL (normal +z), side walls x = -+SIDE_WALL (normals +-x)
    for k, offset, sign in ((2, BACK_WALL, 1.0), (0, SIDE_WALL, 1.0), (0, SIDE_WALL, -1.0)):
        den = sign * d[k]
        t = jnp.where(den < 0, -(sign * o[k] + offset) / _safe(den), _FAR)
        n = (sign * one, zero, zero) if k == 0 else (zero, zero, sign * one)
        walls.append((jnp.where(t > _EPS, t, _FAR), n))
    t_wall, n_wall = _nearest(*walls)
    up = (jnp.zeros_like(t_floor), jnp.ones_like(t_floor), jnp.zeros_like(t_floor))
    floor_first = t_floor < t_wall
    t = jnp.minimum(t_floor, t_wall)
    n = tuple(jnp.where(floor_first, a, b) for a, b in zip(up, n_wall, strict=True))
    sky = (~floor_first) & (o[1] + t_wall * d[1] > WALL_HEIGHT)
    return t, n, sky  # type: ignore[return-value]


def _shade(p: Vec, n: Vec, shape: Array, scale: Array, cast: bool) -> Array:
    to_light = tuple(jnp.float32(LIGHT[k]) - p[k] for k in range(3))
    dist = jnp.sqrt(_dot(to_light, to_light))
    light = (to_light[0] / dist, to_light[1] / dist, to_light[2] / dist)
    lamb = jnp.maximum(_dot(n, light), 0.0)
    if cast:
        start = tuple(p[k] + 1e-3 * n[k] for k in range(3))
        t, _ = object_hit(start, light, shape, scale)  # type: ignore[arg-type]
        lamb = jnp.where(t < dist, SHADOW * lamb, lamb)
    return jnp.minimum(AMBIENT + DIFFUSE * lamb, 1.0)


def coverage_one(shape: Array, scale: Array, azimuth: Array) -> Float[Array, "64 64 4"]:
    """Shade-weighted coverage of (floor, walls, object, sky) per pixel, for one geometry."""
    o, d = _camera_rays(azimuth)
    t_room, n_room, sky = _room_hit(o, d)
    t_obj, n_obj = object_hit(o, d, shape, scale)
    on_obj = t_obj < t_room
    p_room = tuple(o[k] + t_room * d[k] for k in range(3))
    p_obj = tuple(o[k] + t_obj * d[k] for k in range(3))
    shade_room = _shade(p_room, n_room, shape, scale, cast=True)  # type: ignore[arg-type]
    shade_obj = _shade(p_obj, n_obj, shape, scale, cast=False)  # type: ignore[arg-type]
    is_floor = n_room[1] > 0.5
    zero = jnp.zeros_like(shade_room)
    w_floor = jnp.where(~on_obj & is_floor, shade_room, zero)
    w_wall = jnp.where(~on_obj & ~is_floor & ~sky, shade_room, zero)
    w_obj = jnp.where(on_obj, shade_obj, zero)
    w_sky = jnp.where(~on_obj & sky, jnp.ones_like(zero), zero)
    w = jnp.stack([w_floor, w_wall, w_obj, w_sky], axis=-1)
    m = SUBSAMPLES
    return w.reshape(CANVAS, m, CANVAS, m, 4).mean(axis=(1, 3))


_SCALES = np.asarray(SHAPES3D.values[3], np.float32)
_AZIMUTHS = np.deg2rad(np.asarray(SHAPES3D.values[5], np.float32))


@functools.cache
def coverage() -> np.ndarray:
    """:func:`coverage_one` for every (scale, shape, orientation): float32 (8, 4, 15, 64, 64, 4)."""
    out = np.empty((len(_SCALES), 4, len(_AZIMUTHS), CANVAS, CANVAS, 4), np.float32)
    scale = jnp.asarray(_SCALES)
    az = jnp.asarray(_AZIMUTHS)
    for shape in range(4):
        out[:, shape] = np.asarray(_coverage_grid(jnp.asarray(shape, jnp.int32), scale, az))
    return out


_coverage_grid = jax.jit(jax.vmap(jax.vmap(coverage_one, (None, None, 0)), (None, 0, None)))


def hue_rgb(h: Array) -> Float[Array, "... 3"]:
    """Fully saturated colour of hue ``h`` in [0, 1) (HSV with s = v = 1)."""
    h = h[..., None] * 6.0
    offsets = jnp.asarray([3.0, 2.0, 4.0], jnp.float32).reshape((1,) * (h.ndim - 1) + (3,))
    signs = jnp.asarray([1.0, -1.0, -1.0], jnp.float32).reshape(offsets.shape)
    bias = jnp.asarray([-1.0, 2.0, 2.0], jnp.float32).reshape(offsets.shape)
    return jnp.clip(signs * jnp.abs(h - offsets) + bias, 0.0, 1.0)


def colours(factors: Int[Array, "n 6"]) -> Float[Array, "n 4 3"]:
    """Albedo of floor, walls, object and sky for each image."""
    f = jnp.asarray(factors).astype(jnp.float32)
    hues = f[:, :3] * jnp.float32(0.1)
    rgb = hue_rgb(hues)
    sky = jnp.broadcast_to(jnp.asarray(SKY_RGB, jnp.float32).reshape(1, 1, 3), (f.shape[0], 1, 3))
    return jnp.concatenate([rgb, sky], axis=1)


def compose(factors: Int[Array, "n 6"], table: Float[Array, "8 4 15 64 64 4"]) -> UInt8[Array, "n 64 64 3"]:
    """Images of class indices (floor_hue, wall_hue, object_hue, scale, shape, orientation)."""
    factors = jnp.asarray(factors).astype(jnp.int32)
    w = table[factors[:, 3], factors[:, 4], factors[:, 5]]  # (n, 64, 64, 4)
    rgb = jnp.einsum("nijk,nkc->nijc", w, colours(factors))
    return jnp.round(jnp.clip(rgb, 0.0, 1.0) * 255.0).astype(jnp.uint8)


@jax.jit
def render_direct(factors: Int[Array, "n 6"]) -> UInt8[Array, "n 64 64 3"]:
    """Ray-cast images without the coverage table: every ray of every image traced (jitted, vmapped)."""
    factors = jnp.asarray(factors).astype(jnp.int32)
    scale = jnp.asarray(_SCALES)[factors[:, 3]]
    azimuth = jnp.asarray(_AZIMUTHS)[factors[:, 5]]
    w = jax.vmap(coverage_one)(factors[:, 4], scale, azimuth)
    rgb = jnp.einsum("nijk,nkc->nijc", w, colours(factors))
    return jnp.round(jnp.clip(rgb, 0.0, 1.0) * 255.0).astype(jnp.uint8)


_compose_jit = jax.jit(compose)


class Shapes3DLike(AbstractDataset):
    """Procedural stand-in for Shapes3D (480,000-image grid), composed from the ray-cast table.

    Attributes:
        table: :func:`coverage`, float32 (8, 4, 15, 64, 64, 4) (31 MiB; moves with ``to_device``).
    """

    table: Array
    name: str = eqx.field(static=True, default="shapes3d")
    grid: FactorGrid = eqx.field(static=True, default=SHAPES3D)
    image_shape: tuple[int, int, int] = eqx.field(static=True, default=(CANVAS, CANVAS, 3))
    provenance: Provenance = eqx.field(
        static=True,
        default=Provenance(kind=STAND_IN, source="linvae.deep.data.room.Shapes3DLike (ray-cast room corner)"),
    )

    def __init__(self) -> None:
        self.table = jnp.asarray(coverage())

    def sample_factors(self, key: PRNGKeyArray, n: int) -> Int[Array, "n K"]:
        """Uniform over the grid."""
        return uniform_factors(key, n, self.grid.sizes)

    def images(self, factors: Int[Array, "n K"]) -> UInt8[Array, "n H W C"]:
        """Composed with :func:`compose`."""
        return _compose_jit(factors, self.table)

    def batch(self, key: PRNGKeyArray, n: int) -> Batch:
        """Uniform draw from the grid, rendered."""
        factors = self.sample_factors(key, n)
        return Batch(self.images(factors), factors)
