"""The two computation paths every metric offers, and the warning for dropped factors."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

Backend = Literal["reference", "fast"]
"""``"reference"``: numpy + scikit-learn, as disentanglement_lib; ``"fast"``: JAX (float64)."""


class ConstantFactorWarning(UserWarning):
    """A factor takes a single value in the sample; the metric leaves it out instead of returning NaN."""


def check_backend(backend: str) -> None:
    if backend not in ("reference", "fast"):
        raise ValueError(f"backend must be 'reference' or 'fast'; got {backend!r}")


def warn_dropped(metric: str, dropped: Sequence[int]) -> None:
    """Warn that ``metric`` leaves out the constant factors ``dropped`` (no-op when none)."""
    if len(dropped):
        warnings.warn(
            f"{metric}: factor(s) {list(map(int, dropped))} take a single value in the sample (zero"
            " entropy); left out of the average (disentanglement_lib would return NaN or fail)",
            ConstantFactorWarning,
            stacklevel=3,
        )


def padded_size(n: int) -> int:
    """The bucket ``n`` is padded to before a jitted kernel: at least 64, then ``2^k (1 + j/4)``.

    Kernels are compiled once per shape; padding (with zero-weight entries that leave every sum
    unchanged) lets one compilation serve many sample sizes at <= 25% extra work.
    """
    size = 64
    while size < n:
        size += (1 << (size.bit_length() - 1)) // 4
    return size
