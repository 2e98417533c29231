"""Label switching and convergence on crafted draws (no sampler): detect, explain, repair."""

import warnings

import numpy as np

from hmm_pyro import Fit
from hmm_pyro.diagnostics import Remedy, diagnose, find_permutations, relabel
from hmm_pyro.diagnostics.label_switching import switch_statistics
from hmm_pyro.labels.permutations import compose, identity, permute_params
from tests.diagnostics.helpers import TRUTH, crafted_fit, noisy_draws, planted_fit, tensors

CHAINS, DRAWS = 4, 300


def test_clean_draws_raise_no_flag(workload_hmm, small_data):
    report = diagnose(
        planted_fit(workload_hmm, small_data, identity(3, (CHAINS, DRAWS))), deep=False
    )
    assert report.ok, str(report)
    assert report.measurements["convergence"]["invariant"]["max_r_hat"] < 1.01


def test_within_chain_swap_is_flagged_and_repaired(workload_hmm, small_data):
    planted = identity(3, (CHAINS, DRAWS))
    planted[2, DRAWS // 2 :] = [0, 2, 1]  # chain 2 swaps states 1 and 2 halfway
    fit = planted_fit(workload_hmm, small_data, planted)
    report = diagnose(fit, deep=False)
    assert report.kinds == ("label_switching",), str(report)
    flag = report.flag("label_switching")
    assert "chain(s) 2 switch labels" in flag.summary
    assert flag.measured["non_modal_fraction"][2] == 0.5
    assert flag.measured["changes"][2] == 1
    assert flag.measured["max_r_hat_raw"] > 1.1
    assert flag.measured["max_r_hat_invariant"] < 1.01
    assert "converged up to labels" in flag.cause
    assert flag.remedies[0] is Remedy.RELABEL
    # repaired: every draw brought back, draw by draw
    perms = find_permutations(fit).perms
    total = compose(planted, perms).reshape(-1, 3)
    assert (total == total[0]).all()
    relabelled = relabel(fit)
    after = diagnose(relabelled, deep=False)
    assert after.ok, str(after)
    assert after.measurements["convergence"]["raw"]["max_r_hat"] < 1.01


def test_between_chain_permutations_are_flagged(workload_hmm, small_data):
    planted = identity(3, (CHAINS, DRAWS))
    planted[1], planted[3] = [1, 2, 0], [2, 1, 0]
    report = diagnose(planted_fit(workload_hmm, small_data, planted), deep=False)
    flag = report.flag("label_switching")
    assert flag is not None and "different labellings" in flag.summary
    assert report.flag("not_converged") is None
    modal = np.asarray(flag.measured["chain_permutations"])
    assert (compose(planted[:, 0], modal) == compose(planted[0, 0], modal[0])).all()
    # the Hungarian match of each chain's mean emission rows to a reference chain agrees
    aligned = np.asarray(flag.measured["chain_alignment"])
    assert (compose(planted[:, 0], aligned) == compose(planted[0, 0], aligned[0])).all()
    assert "only after permuting states" in flag.summary


def test_chains_in_different_modes_are_one_flag_with_the_r_hat(workload_hmm, small_data):
    """Chain 3 in another mode (not a relabelling): one error flag naming chain 3 and the gap,
    with the invariant R-hat folded in (no second ``not_converged`` flag)."""
    draws = noisy_draws(TRUTH, CHAINS, DRAWS, seed=5)
    other = {name: value.copy() for name, value in TRUTH.items()}
    other["B"] = 0.5 * TRUTH["B"] + 0.5 * TRUTH["B"][[1, 2, 0]]  # another mode, not a relabelling
    shifted = noisy_draws(other, 1, DRAWS, seed=6)
    for name in draws:
        draws[name][3] = shifted[name][0]
    report = diagnose(crafted_fit(workload_hmm, small_data, draws), deep=False)
    assert report.flag("not_converged") is None
    flag = report.flag("chains_in_different_modes")
    assert flag is not None and flag.severity == "error"
    assert flag.measured["worse_chains"] == [3]
    assert flag.measured["convergence"]["invariant"]["max_r_hat"] > 1.1
    assert flag.measured["convergence"]["chain_gap"]["standard_errors"] > 6
    assert 3 in flag.measured["convergence"]["chain_gap"]["chains"]
    assert " Chains in different modes: chains " in flag.summary
    assert " nats (chain 3 lower)" in flag.summary


def test_switching_left_after_relabelling_points_to_fewer_states(workload_hmm, small_data):
    planted = identity(3, (CHAINS, DRAWS))
    planted[2, DRAWS // 2 :] = [0, 2, 1]  # as if relabelling could not hold states 1 and 2 apart
    clean = noisy_draws(TRUTH, CHAINS, DRAWS, seed=0)
    fit = crafted_fit(
        workload_hmm, small_data, permute_params(workload_hmm, clean, planted), labels="aligned"
    )
    assert fit.labelling == "aligned"
    flag = diagnose(fit, deep=False).flag("label_switching")
    assert flag is not None and flag.severity == "error"
    assert flag.summary == "Label switching after relabelling: states 1, 2 still change places."
    assert flag.states == (1, 2)
    assert flag.remedies[0] is Remedy.FEWER_STATES
    assert Remedy.RELABEL not in flag.remedies


def test_divergences_and_constant_entries(workload_hmm, small_data):
    draws = noisy_draws(TRUTH, CHAINS, DRAWS, seed=7)
    draws["pi"][:] = TRUTH["pi"]  # constant: R-hat undefined, must not warn or flag
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging[1, 10] = diverging[2, 99] = True
    fit = Fit.from_params(
        workload_hmm,
        small_data,
        tensors(draws),
        method="nuts",
        sample_stats={"diverging": diverging},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = diagnose(fit, deep=False)
    assert report.kinds == ("divergences",), str(report)
    assert report.flag("divergences").measured["divergences"] == 2
    assert np.isnan(report.measurements["convergence"]["raw"]["entries"]["pi[0]"]["r_hat"])


def test_switch_statistics_ignore_swaps_inside_collapsed_groups():
    perms = identity(3, (2, 10))
    perms[1, 5:] = [0, 2, 1]
    assert switch_statistics(perms).within_chain
    grouped = switch_statistics(perms, groups=[(1, 2)])
    assert not grouped.switching
    assert grouped.non_modal_fraction.tolist() == [0.0, 0.0]


def test_borderline_rhat_with_ample_ess_is_a_note_not_a_failure():
    import pandas as pd

    from hmm_pyro.diagnostics.convergence import ConvergenceStatistics
    from hmm_pyro.diagnostics.thresholds import RHAT_NOISE

    table = pd.DataFrame(
        {
            "r_hat": [1.005, 1.012, 1.012, RHAT_NOISE + 0.001],
            "ess_bulk": [2000.0, 2000.0, 500.0, 2000.0],
            "ess_tail": [1500.0, 1500.0, 500.0, 1500.0],
        },
        index=["fine", "noise", "few_draws", "too_high"],
    )
    stats = ConvergenceStatistics(table, table, 0, 2000, 4)
    # 4 chains: the ESS floor is 400, "ample" is 800.
    assert stats.failing_rhat(table) == ["few_draws", "too_high"]
    assert stats.borderline_rhat(table) == ["noise"]
