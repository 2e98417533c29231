"""``--emission`` and ``--blocks``: the family built from the options, errors in one line."""

from __future__ import annotations

import numpy as np
import pytest

import hmm_pyro as hp
from hmm_pyro.cli import build_parser, main
from hmm_pyro.cli._emission import emission_of


def _args(*argv: str):
    return build_parser().parse_args(["fit", "x.csv", "-K", "2", *argv])


def test_blocks_build_a_product_with_each_block_on_its_columns():
    data = hp.Sequences(np.array([[[0.0, 1.5, -0.2, 3.0], [2.0, 0.3, 0.4, 1.0]]]), dim=4)
    args = _args("--emission", "product", "--blocks", " kind=categorical, pos=mvnormal:2,n=poisson")
    expected = hp.Product(kind=hp.Categorical(3), pos=hp.MultivariateNormal(2), n=hp.Poisson())
    assert emission_of(args, data) == expected
    args = _args("--emission", "product", "--blocks", "step=gamma,angle=vonmises")
    assert emission_of(args) == hp.Product(step=hp.Gamma(), angle=hp.VonMises())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--blocks", "step=gama,angle=vonmises"),
            "--blocks: unknown family 'gama' in block 'step'",
        ),
        (("--blocks", "step=gamma,step=vonmises"), "--blocks: block name 'step' given twice"),
        (
            ("--blocks", "step=gamma,angle=vonmises,x=poisson"),
            "--blocks: the blocks take 3 columns",
        ),
        (("--blocks", "step=gamma"), "--blocks: expected at least two blocks, got 1"),
        (("--blocks", "step=gamma:0,angle=vonmises"), "--blocks: expected a number of columns"),
        (("--blocks", "step,angle"), "--blocks: expected NAME=FAMILY\\[:D\\] items"),
        (("--blocks", "step=gamma,angle=mvnormal"), "--blocks: block 'angle': dim: mvnormal"),
        (("--blocks", "step=gamma,angle=product"), "--blocks: block 'angle': a nested product"),
        ((), "--blocks: expected the product's blocks"),
        (
            ("--blocks", "a=gamma,b=gamma", "--symbols", "3"),
            "--symbols: not an option of a product",
        ),
    ],
)
def test_product_option_errors_name_the_flag(argv, message):
    data = hp.Sequences(np.ones((1, 5, 2)), dim=2)
    with pytest.raises(ValueError, match=f"^{message}"):
        emission_of(_args("--emission", "product", *argv), data)


def test_blocks_with_another_family_are_refused():
    with pytest.raises(ValueError, match=r"^--blocks: the blocks of --emission product; got --em"):
        emission_of(_args("--emission", "gamma", "--blocks", "a=gamma,b=gamma"))


def test_fit_reports_a_bad_block_in_one_line(tmp_path, capsys):
    """Through ``main``: exit code 2 and one line on stderr."""
    np.save(tmp_path / "x.npy", np.ones((1, 5, 2)))
    code = main(
        ["fit", str(tmp_path / "x.npy"), "-K", "2", "--emission", "product", "--blocks",
         "step=gama,angle=vonmises", "--method", "em", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--blocks: unknown family 'gama' in block 'step'" in err[0]
