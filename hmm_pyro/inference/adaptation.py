"""Warm-up adaptation of NUTS as Stan runs it: step size and mass matrix (metric).

- :class:`DualAveraging`: Nesterov's dual averaging of the log step size towards a target mean
  acceptance statistic (Hoffman & Gelman 2014, section 3.2), with Stan's constants
  (``gamma = 0.05``, ``t0 = 10``, ``kappa = 0.75``, ``mu = log(10 * eps0)``); the step size
  after warm-up is the averaged iterate.
- :func:`metric_windows`: Stan's windows of the warm-up in which the mass matrix is estimated
  (a 75-iteration initial buffer with step-size adaptation only, windows of 25, 50, 100, ...
  iterations, the last one stretched to the start of a 50-iteration terminal buffer; 15% /
  75% / 10% of the warm-up when it is shorter than 150 iterations; none below 20).
- :class:`Metric`: the inverse mass matrix (diagonal, or dense with a Cholesky factor), its
  momentum draws, velocities and kinetic energy, and :meth:`Metric.estimate`, Stan's
  regularised estimate from the draws of a window,
  ``n / (n + 5) * estimate + 1e-3 * 5 / (n + 5) * I``.

Sources, in ``docs/inference.md``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DualAveraging", "Metric", "metric_windows"]

INIT_BUFFER = 75
"""Warm-up iterations before the first mass-matrix window (step size only)."""
TERM_BUFFER = 50
"""Warm-up iterations after the last window (step size only, for the final metric)."""
BASE_WINDOW = 25
"""Length of the first mass-matrix window; each next one is twice as long."""


def metric_windows(warmup: int) -> list[tuple[int, int]]:
    """Stan's mass-matrix windows ``[start, end)`` of ``warmup`` iterations.

    At the end of each window the metric is re-estimated from the window's draws. A window
    whose successor (twice as long) would reach past the terminal buffer is stretched to it.
    Shorter warm-ups than buffers plus the first window (150) use 15% / 75% / 10%; under 20
    iterations there is no window (step-size adaptation only), as in Stan.
    """
    if warmup < 20:
        return []
    init, term, base = INIT_BUFFER, TERM_BUFFER, BASE_WINDOW
    if init + base + term > warmup:
        init, term = int(0.15 * warmup), int(0.1 * warmup)
        base = warmup - init - term
    last = warmup - term
    windows = []
    start, size, end = init, base, init + base
    while True:
        windows.append((start, end))
        if end >= last:
            return windows
        size *= 2
        start, end = end, end + size
        if end + 2 * size > last:
            end = last


class DualAveraging:
    """Dual averaging of ``log(step size)`` (Stan's ``stepsize_adaptation``).

    Parameters
    ----------
    target : float
        Target mean acceptance statistic (``delta``).
    gamma, t0, kappa : float
        Stan's defaults: shrinkage towards ``mu``, early-iteration damping, decay of the
        averaging weights.
    """

    def __init__(
        self, target: float, gamma: float = 0.05, t0: float = 10.0, kappa: float = 0.75
    ) -> None:
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.mu = 0.0
        self.restart(1.0)

    def restart(self, step_size: float) -> None:
        """Start again around ``step_size``: ``mu = log(10 * step_size)``, sums reset."""
        self.mu = math.log(10.0 * step_size)
        self.counter, self.s_bar, self.x_bar = 0, 0.0, 0.0

    def update(self, accept_stat: float) -> float:
        """Learn from one transition's acceptance statistic; the next step size."""
        self.counter += 1
        accept_stat = min(accept_stat, 1.0)
        eta = 1.0 / (self.counter + self.t0)
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.target - accept_stat)
        x = self.mu - self.s_bar * math.sqrt(self.counter) / self.gamma
        weight = self.counter ** (-self.kappa)
        self.x_bar = (1.0 - weight) * self.x_bar + weight * x
        return math.exp(x)

    def final(self) -> float:
        """The step size after warm-up: ``exp`` of the averaged iterate."""
        return math.exp(self.x_bar)


class Metric:
    """Inverse mass matrix ``M^-1`` of the kinetic energy ``p' M^-1 p / 2``.

    Parameters
    ----------
    size : int
        Dimension.
    dense : bool
        A full matrix (momenta drawn through its Cholesky factor) instead of a diagonal.
    """

    def __init__(self, size: int, dense: bool = False) -> None:
        self.size, self.dense = size, dense
        self.set(np.eye(size) if dense else np.ones(size))

    def set(self, inverse_mass: np.ndarray) -> None:
        """Use ``inverse_mass`` (a vector if diagonal, a positive-definite matrix if dense)."""
        self.inverse_mass = np.array(inverse_mass, dtype=np.float64)
        if self.dense:
            # Sigma = L L'; p = L'^-1 u has covariance Sigma^-1 = M.
            cholesky = np.linalg.cholesky(self.inverse_mass)
            self._momentum_factor = np.linalg.inv(cholesky).T.copy()
        else:
            self._momentum_scale = 1.0 / np.sqrt(self.inverse_mass)

    def momentum(self, rng: np.random.Generator) -> np.ndarray:
        """A momentum ``p ~ N(0, M)``."""
        draw = rng.standard_normal(self.size)
        if self.dense:
            return self._momentum_factor @ draw
        return self._momentum_scale * draw

    def velocity(self, momentum: np.ndarray) -> np.ndarray:
        """``M^-1 p``: the time derivative of the position (Stan's ``p_sharp``)."""
        if self.dense:
            return self.inverse_mass @ momentum
        return self.inverse_mass * momentum

    def estimate(self, draws: np.ndarray) -> np.ndarray:
        """Stan's regularised (co)variance of ``draws`` ``(n, size)``, ``n >= 2``.

        ``n / (n + 5) * S + 1e-3 * 5 / (n + 5) * I`` with ``S`` the sample (co)variance
        (denominator ``n - 1``): shrinks towards a small multiple of the identity, which keeps
        the estimate positive definite for short windows.
        """
        n = draws.shape[0]
        shrink, floor = n / (n + 5.0), 1e-3 * 5.0 / (n + 5.0)
        if self.dense:
            covariance = np.atleast_2d(np.cov(draws, rowvar=False, ddof=1))
            return shrink * covariance + floor * np.eye(self.size)
        return shrink * draws.var(axis=0, ddof=1) + floor
