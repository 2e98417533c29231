"""The ``chains_in_different_modes`` flag: chains whose log posterior sits far below the best's.

The flag names the gap in nats (mean log posterior and log likelihood of every chain against the
best chain's), which chains are worse, and whether they were still climbing; its remedies start
the chains in the best mode, warm up longer, or stack the chains
(docs/degeneracy.md#chains-in-different-modes).
"""

from __future__ import annotations

from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.modes import ChainModes
from hmm_pyro.diagnostics.thresholds import MODE_GAP_SD, MODE_OVERLAP_QUANTILE, MODE_SEPARATION

__all__ = ["chain_modes_flag", "nats"]


def nats(value: float) -> str:
    """A log-density difference for messages: ``2,350`` nats, or three significant digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _chains(chains: tuple[int, ...] | list[int]) -> str:
    return ", ".join(map(str, chains))


def chain_modes_flag(modes: ChainModes | None) -> Flag | None:
    """Chains in worse modes than the best chain (error), with the gap in nats."""
    if modes is None or not modes.worse:
        return None
    best, worse = modes.best, modes.worse
    gaps = modes.gap
    widest = max(worse, key=lambda chain: gaps[chain])
    which = "chain" if len(worse) == 1 else "chains"
    gap_text = (
        f"{nats(gaps[worse[0]])} nats"
        if len(worse) == 1
        else f"{nats(min(gaps[c] for c in worse))} to {nats(gaps[widest])} nats"
    )
    per_chain = ", ".join(
        f"{chain}: {nats(value)}" for chain, value in enumerate(modes.log_posterior)
    )
    likelihood = ", ".join(f"{nats(modes.gap_log_likelihood[c])}" for c in worse)
    summary = (
        f"Chains {gap_text} apart in mean log posterior: {which} {_chains(worse)} below chain "
        f"{best} (log likelihood {likelihood} nats lower), in a different mode or still "
        f"climbing; mean log posterior per chain {per_chain}."
    )
    verb = "explores" if len(worse) == 1 else "explore"
    cause = (
        f"the worse {which} {verb} a region of much lower posterior density that the sampler "
        f"did not leave: the gap exceeds {MODE_GAP_SD:g} within-chain sd (sd "
        f"{nats(float(modes.sd[widest]))} nats for chain {widest}; at least "
        f"sqrt(parameters / 2)) and either {MODE_SEPARATION:g} Monte Carlo standard errors or "
        f"the chains' log-posterior draws do not overlap (central "
        f"{1 - 2 * MODE_OVERLAP_QUANTILE:.0%}). Pooling these chains mixes a worse local mode "
        "into the posterior"
    )
    climbing = modes.climbing
    if climbing:
        rises = ", ".join(f"{c}: +{nats(float(modes.drift[c]))}" for c in climbing)
        one = len(climbing) == 1
        cause += (
            f"; {'chain' if one else 'chains'} {_chains(climbing)} still rose between the first "
            f"and second half of {'its' if one else 'their'} draws ({rises} nats): "
            f"{'it was' if one else 'they were'} climbing out of {'its' if one else 'their'} "
            f"start when sampling began, so a longer warm-up may bring {'it' if one else 'them'} "
            "up"
        )
        remedies = (Remedy.LONGER_RUN, Remedy.MAP_STARTS, Remedy.STACK_CHAINS)
    else:
        cause += (
            f"; the worse {which} {'is' if len(worse) == 1 else 'are'} stationary where "
            f"{'it is' if len(worse) == 1 else 'they are'} (no rise between the halves of the "
            "draws), so more of the same sampling will not move "
            f"{'it' if len(worse) == 1 else 'them'}"
        )
        remedies = (Remedy.MAP_STARTS, Remedy.LONGER_RUN, Remedy.STACK_CHAINS)
    return Flag(
        kind="chains_in_different_modes",
        severity="error",
        summary=summary,
        measured={
            "chain_log_posterior": modes.log_posterior,
            "chain_log_likelihood": modes.log_likelihood,
            "gap_nats": modes.gap,
            "gap_log_likelihood_nats": modes.gap_log_likelihood,
            "within_chain_sd": modes.sd,
            "mcse": modes.mcse,
            "drift_nats": modes.drift,
            "best_chain": best,
            "worse_chains": list(worse),
            "climbing_chains": list(climbing),
        },
        threshold={
            "gap_sd": MODE_GAP_SD,
            "mode_separation": MODE_SEPARATION,
            "overlap_quantile": MODE_OVERLAP_QUANTILE,
        },
        cause=cause + ".",
        remedies=remedies,
    )
