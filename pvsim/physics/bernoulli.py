"""The Bernoulli function B(x) = x / (exp(x) - 1) used by the Scharfetter–Gummel flux.

Evaluation (DESIGN.md, "Bernoulli function"):

* |x| < 1e-3: the series 1 - x/2 + x^2/12 - x^4/720 (truncation error < 1e-18);
* otherwise x / expm1(x), with the double-``where`` trick so that neither branch ever
  produces a NaN that could leak into a gradient;
* the derivative is given by a ``custom_jvp``: B'(x) = B(x) (1 - B(-x)) / x, whose
  1 - B(-x) cancels for small |x|, so for |x| < 0.05 the series
  -1/2 + x/6 - x^3/180 + x^5/5040 - x^7/151200 is used (truncation < 1e-18).

B(x) = B(-x) - x holds exactly, B(x) > 0 for all x, B(x) -> 0 for x -> +inf (it underflows
to 0 beyond x ~ 745), B(x) ~ -x for x -> -inf.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_SMALL = 1e-3
_DSMALL = 0.05


def _b_value(x):
    small = jnp.abs(x) < _SMALL
    xs = jnp.where(small, 1.0, x)  # safe argument for the large branch
    x2 = x * x
    series = 1.0 - 0.5 * x + x2 / 12.0 - x2 * x2 / 720.0
    return jnp.where(small, series, xs / jnp.expm1(xs))


@jax.custom_jvp
def bernoulli(x):
    """B(x) = x / (e^x - 1), elementwise, float64-accurate over the whole real line."""
    return _b_value(x)


def bernoulli_derivative(x):
    """dB/dx, accurate everywhere (no cancellation near 0, no overflow for large |x|)."""
    small = jnp.abs(x) < _DSMALL
    xs = jnp.where(small, 1.0, x)
    b_pos = _b_value(xs)
    b_neg = _b_value(-xs)
    # B(x)(1 - B(-x))/x; for x -> +inf B -> 0, for x -> -inf B(-x) -> 0 and B(x) ~ -x: both finite
    large = b_pos * (1.0 - b_neg) / xs
    x2 = x * x
    series = -0.5 + x * (1.0 / 6.0 + x2 * (-1.0 / 180.0 + x2 * (1.0 / 5040.0 - x2 / 151200.0)))
    return jnp.where(small, series, large)


@bernoulli.defjvp
def _bernoulli_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return bernoulli(x), bernoulli_derivative(x) * dx
