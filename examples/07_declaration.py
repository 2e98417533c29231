"""07 - Vowels and consonants from letters alone (Cave & Neuwirth 1980), on a public text.

Cave & Neuwirth (1980) fitted hidden Markov models to English text read as a sequence of 27
symbols, the letters a-z and the break between words, and found that two hidden states
separate the vowels from the consonants, with no linguistic knowledge given. The script does
the same on the United States Declaration of Independence (public domain; 7856 symbols): it
fits a two-state categorical HMM by EM to maximum likelihood and prints

- the optimum beside the one computed independently of this package: -21537.7052, the best
  of 20 runs of hmmlearn's CategoricalHMM from random starts (see docs/datasets.md);
- each state's most probable symbols, and which state gives each of a, e, i, o, u the higher
  probability;
- the decoded states of the first symbols.

EM needs hundreds of iterations here, and some restarts stop at lower local optima: the best
of several restarts is kept. No NUTS run: the point
of this example is the maximum-likelihood split.

    python examples/07_declaration.py            # 5 EM restarts
    python examples/07_declaration.py --quick    # a smoke run (3 EM restarts)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import hmm_pyro as hp
from hmm_pyro.datasets import dataset
from hmm_pyro.diagnostics import diagnose
from hmm_pyro.fit import fit_statistics
from hmm_pyro.plots import plot_emissions

INDEPENDENT = -21537.7052
"""Maximum log likelihood of the two-state letters HMM (best of 20 hmmlearn runs)."""
VOWELS = ("a", "e", "i", "o", "u")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 EM restarts instead of 5")
    parser.add_argument("--out", default="out/examples/07_declaration", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    restarts = 3 if args.quick else 5

    # 1. The data ------------------------------------------------------------------------------
    entry = dataset("declaration")
    text = "".join(entry.frame()["letter"])
    data = entry.sequences()
    symbols = list(data.symbols)
    print(entry.title)
    print(f"{text.count('_') + 1} words, {len(set(text))} symbols; it begins")
    print(f"  {text[:72]}")

    # 2. Maximum likelihood by EM, beside the independent optimum -----------------------------
    hmm = hp.HMM(num_states=2, emission=hp.Categorical(len(symbols), symbols=symbols))
    fit = hp.fit_em(
        hmm,
        data,
        restarts=restarts,
        max_iter=3000,
        tol=1e-10,
        seed=args.seed,
        emission_prior=False,  # with the default flat Dirichlets: maximum likelihood
        progress=False,
    )
    stats = fit_statistics(fit)
    print(
        f"log likelihood {stats.log_likelihood:.4f} (independent {INDEPENDENT:.4f}), "
        f"{stats.num_params} free parameters"
    )
    final = fit.idata.sample_stats["final_objective"].values.ravel()
    print(f"restarts end at {', '.join(f'{value:.2f}' for value in final)}")

    # 3. The two states: vowels and consonants -------------------------------------------------
    emission = fit.posterior_mean()["B"]
    transition = fit.posterior_mean()["A"]
    vowel_state = int(emission[:, symbols.index("e")].argmax())
    favoured = emission.argmax(dim=0)  # the state giving each symbol the higher probability
    for state in (vowel_state, 1 - vowel_state):
        mine = [symbols[i] for i in range(len(symbols)) if int(favoured[i]) == state]
        top = emission[state].argsort(descending=True)[:6]
        best = "  ".join(f"{symbols[i]} {float(emission[state, i]):.3f}" for i in top.tolist())
        print(f"state {state}: {best}; favours {' '.join(mine)}")
    in_vowel_state = [v for v in VOWELS if int(favoured[symbols.index(v)]) == vowel_state]
    print(f"vowels favoured by state {vowel_state}: {' '.join(in_vowel_state)} (of a e i o u)")
    print(
        f"P(stay) {float(transition[vowel_state, vowel_state]):.3f} in state {vowel_state}, "
        f"{float(transition[1 - vowel_state, 1 - vowel_state]):.3f} in the other: they alternate"
    )

    # 4. Diagnose and decode -------------------------------------------------------------------
    print(diagnose(fit))
    # posterior decoding: each symbol's more probable state given the whole text
    decoded = fit.state_probs()[0].argmax(dim=-1).tolist()
    marks = "".join("v" if state == vowel_state else "c" for state in decoded)
    vowel_hits = [marks[i] == "v" for i, letter in enumerate(text) if letter in VOWELS]
    share = sum(vowel_hits) / len(vowel_hits)
    print(f"Posterior decoding: {share:.1%} of the vowels in the text fall in state {vowel_state}")
    print(f"The first symbols and their states (v: state {vowel_state}, c: the other):")
    print(f"  {text[:72]}\n  {marks[:72]}")

    # 5. Plot ----------------------------------------------------------------------------------
    axes = plot_emissions(fit)  # 27 symbols: one panel per state
    figure = axes[0].figure
    figure.savefig(out / "declaration_emissions.png", dpi=110)
    plt.close(figure)
    print(f"Plot written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
