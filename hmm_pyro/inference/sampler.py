"""The no-U-turn sampler in NumPy, as Stan runs it: multinomial NUTS with Stan's warm-up.

:class:`NUTS` samples a density given by a function ``point -> (log density, gradient)`` on
float64 vectors (for the HMM, :meth:`Potential.numpy_value_and_gradient
<hmm_pyro.inference.potential.Potential.numpy_value_and_gradient>`, one numba call), with no
torch or autograd on the way: each leapfrog step is a few vector operations around that call.

One transition (Betancourt 2017, appendix A; Stan's ``base_nuts``):

- a momentum ``p ~ N(0, M)``; the trajectory is doubled in a random direction (forward or
  backward in time, each with probability 1/2) until it makes a U-turn, a subtree diverges,
  or ``max_tree_depth`` doublings;
- each new subtree is built leaf by leaf (leapfrog steps of the step size); within it, a
  proposal is kept by multinomial sampling (a subtree's two halves weighted by their summed
  ``exp(-H)``); the new subtree's proposal replaces the current sample with probability
  ``min(1, w_new / w_old)`` (biased progressive sampling, which favours the far end);
- the no-U-turn criterion is the generalised one on the summed momentum ``rho`` and the
  velocities ``M^-1 p`` at the two ends (``v_end . rho > 0`` at both ends), checked for every
  subtree and for the whole trajectory after each doubling, and, as Stan does since 2.26, also
  for each merged tree's left half extended by the first state of the right half and its
  right half extended by the last state of the left half;
- a leaf whose energy exceeds the starting energy by more than 1000 is a divergence: the
  subtree is discarded and the trajectory ends;
- the acceptance statistic is the mean over the trajectory's new states (rejected subtrees
  included) of ``min(1, exp(H0 - H))``.

Warm-up (:mod:`hmm_pyro.inference.adaptation`) is Stan's: an initial step size by doubling or
halving until one leapfrog step's acceptance crosses 0.8, dual averaging of the step size
towards ``target_accept`` at every warm-up iteration, the mass matrix (diagonal, or dense)
re-estimated at the end of each of Stan's windows, after which the step size is searched
again and dual averaging restarted; the step size after warm-up is the averaged iterate.

Randomness comes from one :class:`numpy.random.Generator` seeded by ``seed``: no global state,
so a chain is reproducible bit for bit within a process and across processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from hmm_pyro.inference.adaptation import DualAveraging, Metric, metric_windows

__all__ = ["MAX_ENERGY_ERROR", "NUTS", "Transition"]

MAX_ENERGY_ERROR = 1000.0
"""An energy error ``H - H0`` above this marks a divergence (Stan's ``max_deltaH``)."""
_LOG_INITIAL_ACCEPT = math.log(0.8)
"""One leapfrog step's acceptance that the initial step-size search brackets."""
_MAX_STEP_SIZE = 1e7

LogDensity = Callable[[np.ndarray], tuple[float, np.ndarray]]

# A leaf of the trajectory: (position, momentum, velocity M^-1 p, gradient, log density).
_Leaf = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]
# A (sub)tree in integration order: (first leaf, last leaf, summed momentum, log of the summed
# weights exp(H0 - H), proposal leaf).
_Tree = tuple[_Leaf, _Leaf, np.ndarray, float, _Leaf]


class Transition(NamedTuple):
    """One NUTS iteration.

    Attributes
    ----------
    position : numpy.ndarray
        The new state.
    log_density : float
        Log density at it.
    accept_stat : float
        Mean of ``min(1, exp(H0 - H))`` over the new leapfrog states.
    n_steps : int
        Leapfrog steps (gradient evaluations).
    tree_depth : int
        Trajectory doublings started (the last one may have been cut short by a divergence or
        a U-turn inside it): ``floor(log2(n_steps)) + 1``.
    diverging : bool
        Whether a leapfrog state's energy error exceeded :data:`MAX_ENERGY_ERROR`.
    step_size : float
        Step size of this iteration.
    """

    position: np.ndarray
    log_density: float
    accept_stat: float
    n_steps: int
    tree_depth: int
    diverging: bool
    step_size: float


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


def _criterion(v_left: np.ndarray, v_right: np.ndarray, rho: np.ndarray) -> bool:
    """No U-turn yet: both end velocities point along the summed momentum."""
    return float(v_left @ rho) > 0.0 and float(v_right @ rho) > 0.0


def _no_u_turn(left: _Tree, right: _Tree, rho: np.ndarray) -> bool:
    """The criterion for ``left`` merged with ``right`` (integration order), Stan's three checks.

    The whole tree; ``left`` extended by the first state of ``right``; ``right`` extended by
    the last state of ``left``.
    """
    left_first, left_last, left_rho = left[0], left[1], left[2]
    right_first, right_last, right_rho = right[0], right[1], right[2]
    return (
        _criterion(left_first[2], right_last[2], rho)
        and _criterion(left_first[2], right_first[2], left_rho + right_first[1])
        and _criterion(left_last[2], right_last[2], right_rho + left_last[1])
    )


class NUTS:
    """Multinomial NUTS with Stan's warm-up, one chain, driven one iteration at a time.

    Parameters
    ----------
    log_density : callable
        ``point -> (log density, gradient)`` on float64 vectors; ``-inf`` off the support.
    start : numpy.ndarray
        Starting point (finite log density).
    seed : int or numpy.random.Generator
        Seed of the chain's own generator (or the generator).
    warmup : int
        Warm-up iterations: the first ``warmup`` calls of :meth:`step` adapt the step size and
        mass matrix; later ones keep them fixed.
    target_accept : float
        Target of step-size adaptation, in (0, 1).
    max_tree_depth : int
        Most trajectory doublings per iteration (at most ``2**max_tree_depth - 1`` steps).
    dense_mass : bool
        Adapt a dense mass matrix instead of a diagonal one.

    Raises
    ------
    ValueError
        If the log density or its gradient at ``start`` is not finite, or an argument is out
        of range.
    """

    def __init__(
        self,
        log_density: LogDensity,
        start: np.ndarray,
        seed: int | np.random.Generator,
        warmup: int,
        target_accept: float = 0.8,
        max_tree_depth: int = 10,
        dense_mass: bool = False,
    ) -> None:
        if not 0.0 < target_accept < 1.0:
            raise ValueError(f"target_accept: expected a value in (0, 1), got {target_accept}")
        if max_tree_depth < 1:
            raise ValueError(f"max_tree_depth: expected at least 1, got {max_tree_depth}")
        if warmup < 0:
            raise ValueError(f"warmup: expected at least 0, got {warmup}")
        self._log_density = log_density
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.warmup, self.max_tree_depth = warmup, max_tree_depth
        position = np.array(start, dtype=np.float64).reshape(-1)
        log_density_value, gradient = log_density(position)
        if not (math.isfinite(log_density_value) and np.isfinite(gradient).all()):
            raise ValueError(
                "start: the log density or its gradient is not finite at the starting point"
            )
        self._state = (position, log_density_value, gradient)
        self.metric = Metric(position.size, dense=dense_mass)
        self._windows = metric_windows(warmup)
        self._window_draws: list[np.ndarray] = []
        self.iteration = 0
        self.step_size = self._initial_step_size(1.0)
        self._dual = DualAveraging(target_accept)
        self._dual.restart(self.step_size)

    def step(self) -> Transition:
        """One iteration (adapting while ``iteration < warmup``)."""
        step_size = self.step_size
        transition = self._transition(step_size)
        if self.iteration < self.warmup:
            self._adapt(transition)
        self.iteration += 1
        return transition

    def _adapt(self, transition: Transition) -> None:
        """Stan's warm-up bookkeeping after iteration :attr:`iteration`."""
        t = self.iteration
        self.step_size = self._dual.update(transition.accept_stat)
        window = next((w for w in self._windows if w[0] <= t < w[1]), None)
        if window is not None:
            self._window_draws.append(transition.position)
            if t + 1 == window[1]:
                self.metric.set(self.metric.estimate(np.stack(self._window_draws)))
                self._window_draws = []
                self.step_size = self._initial_step_size(self.step_size)
                self._dual.restart(self.step_size)
        if t + 1 == self.warmup:
            self.step_size = self._dual.final()

    def _leapfrog(self, leaf: _Leaf, step_size: float) -> _Leaf:
        position, momentum, _, gradient, _ = leaf
        momentum = momentum + (0.5 * step_size) * gradient
        position = position + step_size * self.metric.velocity(momentum)
        log_density, gradient = self._log_density(position)
        momentum = momentum + (0.5 * step_size) * gradient
        return position, momentum, self.metric.velocity(momentum), gradient, log_density

    def _energy(self, leaf: _Leaf) -> float:
        energy = 0.5 * float(leaf[1] @ leaf[2]) - leaf[4]
        return math.inf if math.isnan(energy) else energy

    def _initial_step_size(self, step_size: float) -> float:
        """Stan's heuristic: double (or halve) until one step's acceptance crosses 0.8."""
        position, log_density, gradient = self._state

        def log_accept(size: float) -> float:
            momentum = self.metric.momentum(self.rng)
            leaf = (position, momentum, self.metric.velocity(momentum), gradient, log_density)
            return self._energy(leaf) - self._energy(self._leapfrog(leaf, size))

        up = log_accept(step_size) > _LOG_INITIAL_ACCEPT
        while True:
            crossed = log_accept(step_size) > _LOG_INITIAL_ACCEPT
            if crossed != up:
                return step_size
            step_size = 2.0 * step_size if up else 0.5 * step_size
            if step_size > _MAX_STEP_SIZE or step_size == 0.0:
                raise RuntimeError(
                    f"NUTS: no reasonable step size (searched to {step_size:g}); the posterior "
                    "may be improper or the log density flat or not finite near the start"
                )

    def _transition(self, step_size: float) -> Transition:
        position, log_density, gradient = self._state
        momentum = self.metric.momentum(self.rng)
        origin = (position, momentum, self.metric.velocity(momentum), gradient, log_density)
        energy = self._energy(origin)
        trajectory: _Tree = (origin, origin, momentum, 0.0, origin)
        backward_end, forward_end = origin, origin
        sample = origin
        self._steps, self._accept_sum, self._diverging = 0, 0.0, False
        depth = 0
        while depth < self.max_tree_depth:
            forward = self.rng.random() > 0.5
            new = self._build(
                depth,
                forward_end if forward else backward_end,
                step_size if forward else -step_size,
                energy,
            )
            depth += 1
            if new is None:
                break
            log_weight = trajectory[3]
            if new[3] > log_weight or self.rng.random() < math.exp(new[3] - log_weight):
                sample = new[4]
            # The old trajectory in this doubling's direction of integration, then the new.
            if forward:
                old = (backward_end, forward_end, trajectory[2], log_weight, sample)
                forward_end = new[1]
            else:
                old = (forward_end, backward_end, trajectory[2], log_weight, sample)
                backward_end = new[1]
            rho = trajectory[2] + new[2]
            trajectory = (backward_end, forward_end, rho, _logaddexp(log_weight, new[3]), sample)
            if not _no_u_turn(old, new, rho):
                break
        self._state = (sample[0], sample[4], sample[3])
        return Transition(
            position=sample[0],
            log_density=sample[4],
            accept_stat=self._accept_sum / self._steps,
            n_steps=self._steps,
            tree_depth=depth,
            diverging=self._diverging,
            step_size=step_size,
        )

    def _build(self, depth: int, start: _Leaf, step_size: float, energy: float) -> _Tree | None:
        """A subtree of ``2**depth`` leaves after ``start``; ``None`` if it is invalid.

        Invalid: a leaf diverged, or the subtree or one of its subtrees makes a U-turn.
        """
        if depth == 0:
            leaf = self._leapfrog(start, step_size)
            self._steps += 1
            log_weight = energy - self._energy(leaf)
            self._accept_sum += 1.0 if log_weight > 0.0 else math.exp(log_weight)
            if -log_weight > MAX_ENERGY_ERROR:
                self._diverging = True
                return None
            return leaf, leaf, leaf[1], log_weight, leaf
        left = self._build(depth - 1, start, step_size, energy)
        if left is None:
            return None
        right = self._build(depth - 1, left[1], step_size, energy)
        if right is None:
            return None
        log_weight = _logaddexp(left[3], right[3])
        proposal = left[4]
        if right[3] > log_weight or self.rng.random() < math.exp(right[3] - log_weight):
            proposal = right[4]
        rho = left[2] + right[2]
        if not _no_u_turn(left, right, rho):
            return None
        return left[0], right[1], rho, log_weight, proposal
