"""The k4 s2 p1 transposed conv: both forms against PyTorch's scatter definition, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linvae._tolerance import F32
from linvae.deep import checkpoint
from linvae.deep.model import ConvTranspose4x2, ConvVAE, conv_transpose_form, with_conv_transpose_form
from tests.helpers import assert_close

FORMS = ["subpixel", "direct", "auto"]


def _naive_transposed(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PyTorch ConvTranspose2d(k=4, s=2, p=1) by its scatter definition."""
    c, h, wd = x.shape
    o = w.shape[1]
    y = np.zeros((o, 2 * h + 2, 2 * wd + 2))
    for ci in range(c):
        for i in range(h):
            for j in range(wd):
                y[:, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4] += x[ci, i, j] * w[ci]
    return y[:, 1 : 2 * h + 1, 1 : 2 * wd + 1] + b[:, None, None]


def _naive_transposed_vjp(x: np.ndarray, w: np.ndarray, r: np.ndarray):
    """Gradients of ``sum(r * y)`` w.r.t. x, w and b: the adjoint of the scatter, read back as a gather."""
    _, h, wd = x.shape
    r_full = np.pad(r, ((0, 0), (1, 1), (1, 1)))  # undo the crop of one pixel on each side
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for i in range(h):
        for j in range(wd):
            patch = r_full[:, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4]  # (o, 4, 4)
            dx[:, i, j] = np.einsum("okl,cokl->c", patch, w)
            dw += np.einsum("c,okl->cokl", x[:, i, j], patch)
    return dx, dw, r.sum(axis=(1, 2))


def _case(form: str):
    layer = ConvTranspose4x2(3, 5, form=form, key=jax.random.key(1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 6)).astype(np.float32)
    r = rng.normal(size=(5, 8, 12)).astype(np.float32)
    return layer, x, r


def _value_and_grads(layer: ConvTranspose4x2, x: np.ndarray, r: np.ndarray):
    def loss(lay, xx):
        return jnp.sum(lay(xx) * jnp.asarray(r))

    g_layer, g_x = jax.grad(loss, argnums=(0, 1))(layer, jnp.asarray(x))
    return layer(jnp.asarray(x)), g_x, g_layer.weight, g_layer.bias


def _f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


@pytest.mark.parametrize("form", FORMS)
def test_transposed_conv_matches_definition(form):
    layer, x, r = _case(form)
    y, dx, dw, db = _value_and_grads(layer, x, r)
    w, b = _f64(layer.weight), _f64(layer.bias)
    assert y.dtype == dx.dtype == dw.dtype == jnp.float32
    assert_close(y, _naive_transposed(_f64(x), w, b), F32, f"{form}: value")
    ex, ew, eb = _naive_transposed_vjp(_f64(x), w, _f64(r))
    assert_close(dx, ex, F32, f"{form}: d/dx")
    assert_close(dw, ew, F32, f"{form}: d/dweight")
    assert_close(db, eb, F32, f"{form}: d/dbias")


def test_forms_agree():
    sub = _value_and_grads(*_case("subpixel"))
    direct = _value_and_grads(*_case("direct"))
    for what, a, b in zip(("value", "d/dx", "d/dweight", "d/dbias"), sub, direct, strict=True):
        assert_close(a, b, F32, f"subpixel vs direct: {what}")


def _conv_dilations(layer: ConvTranspose4x2, x: np.ndarray) -> list[tuple[int, ...]]:
    jaxpr = jax.make_jaxpr(layer)(jnp.asarray(x))
    return [tuple(e.params["lhs_dilation"]) for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]


def test_auto_is_subpixel_on_cpu():
    if jax.default_backend() != "cpu":
        pytest.skip("checks the CPU choice")
    assert conv_transpose_form("auto") == "subpixel"
    assert ConvTranspose4x2(2, 3, key=jax.random.key(0)).form == "auto"
    # Traced programs: sub-pixel is one undilated 3 x 3 conv; direct dilates the input by 2.
    layer, x, _ = _case("auto")
    assert _conv_dilations(layer, x) == [(1, 1)]
    assert _conv_dilations(with_conv_transpose_form(layer, "direct"), x) == [(2, 2)]


def test_unknown_form_raises():
    with pytest.raises(ValueError, match="unknown transposed-conv form"):
        ConvTranspose4x2(2, 3, form="fft", key=jax.random.key(0))
    with pytest.raises(ValueError, match="unknown transposed-conv form"):
        with_conv_transpose_form(ConvVAE(1, 4, key=jax.random.key(0)), "fft")


def test_form_keeps_parameters_and_checkpoints(tmp_path):
    model = ConvVAE(1, 4, key=jax.random.key(0))
    direct = with_conv_transpose_form(model, "direct")
    assert [d.form for d in direct.deconvs] == ["direct"] * 4
    assert [d.form for d in model.deconvs] == ["auto"] * 4
    leaves, leaves_direct = jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(direct)
    assert len(leaves) == len(leaves_direct) and all(
        a is b for a, b in zip(leaves, leaves_direct, strict=True)
    )
    # The form does not enter the initialisation: one key, the same parameters under every form.
    np.testing.assert_array_equal(_case("direct")[0].weight, _case("subpixel")[0].weight)
    # A checkpoint written under one form loads under the other.
    checkpoint.save(tmp_path / "m.npz", model)
    loaded, _ = checkpoint.load(tmp_path / "m.npz", direct)
    assert [d.form for d in loaded.deconvs] == ["direct"] * 4
    z = jnp.asarray(np.random.default_rng(2).normal(size=4).astype(np.float32))
    assert_close(loaded.decode(z), model.decode(z), F32, "decoder, direct vs auto")
