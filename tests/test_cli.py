"""The command-line interface on temp folders: exit codes, files written, one-line errors.

Each subcommand runs once (the module-scoped fixtures chain them: simulate -> fit -> diagnose /
relabel / decode / plot). Bad inputs must exit with code 2 and print one line that names the
problem, without a traceback.

The commands run in this process through :func:`hmm_pyro.cli.main` (:func:`run`), which is all
that ``python -m hmm_pyro`` and the ``hmm-pyro`` script call, with the working folder changed,
stdout and stderr captured and warnings printed as in a fresh interpreter; a subprocess per
command cost an import of torch, Pyro and ArviZ each (about 4 s of CPU, 60 s for this module).
The entry point itself runs as a subprocess in :func:`test_demo_quick` (the whole demo) and in
``tests/test_bad_input_properties.py`` (a bad input's exit code and single stderr line).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.cli import main, parse_prior_spec
from hmm_pyro.simulate import REFERENCE_PARAMS

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
WORK = pytest.mark.xdist_group("cli_work")
"""The tests that use the simulated folder and the fits chained on it: one pytest-xdist worker
runs the chain's commands once and these tests one after the other."""


@contextlib.contextmanager
def _working_folder(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``hmm-pyro ARGS`` run in ``cwd`` by :func:`main` in this process (see the docstring)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        _working_folder(cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("default")  # printed, as without pytest's "error" filter
        try:
            code = main(list(args))
        except SystemExit as end:  # argparse's usage errors
            code = end.code if isinstance(end.code, int) else 1
    return subprocess.CompletedProcess(["hmm-pyro", *args], code, out.getvalue(), err.getvalue())


def run_entry_point(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m hmm_pyro ARGS`` in a subprocess (a fresh interpreter) in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "hmm_pyro", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_ok(result: subprocess.CompletedProcess, code: int = 0) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def assert_bad_input(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, "no message on stderr"
    last = lines[-1]
    for word in words:
        assert word in last, last


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with data simulated by ``hmm-pyro simulate`` (reference HMM, 6 x 50)."""
    folder = tmp_path_factory.mktemp("cli")
    result = run(
        "simulate", "--params", "reference", "--sequences", "6", "--length", "50",
        "--seed", "1", "--out", "data.csv", cwd=folder,
    )  # fmt: skip
    assert_ok(result)
    return folder


@pytest.fixture(scope="module")
def nuts_fit(work) -> Path:
    result = run(
        "fit", "data.csv", "--states", "3", "--method", "nuts", "--chains", "2",
        "--warmup", "30", "--draws", "30", "--serial", "--no-progress", "--out", "nuts.nc",
        cwd=work,
    )  # fmt: skip
    assert_ok(result)
    return work / "nuts.nc"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("simulate", "fit", "diagnose", "relabel", "compare", "decode", "plot", "demo"):
        assert command in out


@WORK
def test_simulate_writes_data_states_and_params(work):
    frame = pd.read_csv(work / "data.csv")
    assert list(frame.columns) == ["sequence", "time", "value"]
    assert len(frame) == 300 and frame["value"].between(0, 4).all()
    states = pd.read_csv(work / "data_states.csv")
    assert list(states.columns) == ["sequence", "time", "state"] and len(states) == 300
    params = json.loads((work / "data_params.json").read_text())
    assert np.allclose(params["B"], REFERENCE_PARAMS["B"].numpy())
    assert hp.Sequences.from_file(work / "data.csv").num_sequences == 6


@WORK
def test_fit_nuts_writes_posterior_draws(nuts_fit):
    fit = hp.load(nuts_fit)
    assert fit.method == "nuts"
    assert (fit.num_chains, fit.num_draws) == (2, 30)
    assert fit.hmm.emission.num_symbols == 5  # inferred from the data


@WORK
def test_fit_em_with_prior_options(work):
    result = run(
        "fit", "data.csv", "--states", "3", "--method", "em", "--restarts", "2",
        "--stickiness", "5", "--prior-B", "[1, 1, 1, 1, 2]", "--no-progress", "--out", "em.nc",
        cwd=work,
    )  # fmt: skip
    assert_ok(result)
    fit = hp.load(work / "em.nc")
    assert fit.method == "em" and fit.num_draws == 1
    assert fit.hmm.prior.stickiness == 5
    assert fit.hmm.prior.B == [1, 1, 1, 1, 2]
    assert "B =" in result.stdout


@pytest.fixture(scope="module")
def supervised_fit(work) -> Path:
    result = run(
        "fit", "data.csv", "--states", "3", "--method", "supervised",
        "--state-file", "data_states.csv", "--out", "supervised.nc", cwd=work,
    )  # fmt: skip
    assert_ok(result)
    return work / "supervised.nc"


@WORK
def test_fit_supervised_from_state_file(supervised_fit):
    fit = hp.load(supervised_fit)
    truth = REFERENCE_PARAMS["B"]
    assert torch.allclose(fit.posterior_mean()["B"], truth, atol=0.2)


@WORK
def test_diagnose_writes_reports_and_exit_code_1_on_degeneracy(tmp_path, work):
    """A collapsed fit (Pyro's symmetric start) is flagged: exit code 1."""
    hmm = hp.HMM(3, hp.Categorical(5))
    data = hp.Sequences.from_file(work / "data.csv")
    frequencies = torch.bincount(data.values[data.observed].long(), minlength=5).double()
    collapsed = {
        "pi": torch.full((3,), 1 / 3, dtype=torch.float64),
        "A": torch.full((3, 3), 1 / 3, dtype=torch.float64),
        "B": (frequencies / frequencies.sum()).expand(3, 5).clone(),
    }
    hp.Fit.from_params(hmm, data, collapsed, method="svi", attrs={"init": "median"}).save(
        tmp_path / "collapsed.nc"
    )
    result = run("diagnose", "collapsed.nc", "--out", "reports", cwd=tmp_path)
    assert_ok(result, code=1)
    report = json.loads((tmp_path / "reports" / "collapsed_diagnosis.json").read_text())
    assert not report["ok"]
    kinds = {flag["kind"] for flag in report["flags"]}
    assert {"emission_collapse", "symmetric_start"} <= kinds
    markdown = (tmp_path / "reports" / "collapsed_diagnosis.md").read_text()
    assert "emission_collapse" in markdown


@WORK
def test_diagnose_exit_code_0_when_clean(supervised_fit, work, capsys):
    assert main(["diagnose", str(supervised_fit)]) == 0
    assert "No degeneracy found" in capsys.readouterr().out
    assert json.loads((work / "supervised_diagnosis.json").read_text())["ok"]


@WORK
@pytest.mark.slow
def test_relabel_decode_plot(nuts_fit, work):
    result = run("relabel", "nuts.nc", "--out", "relabelled.nc", cwd=work)
    assert_ok(result)
    relabelled = hp.load(work / "relabelled.nc")
    assert "relabel" in relabelled.attrs
    assert "permutations per chain" in result.stdout

    result = run("decode", "relabelled.nc", "--out", "decoded.csv", "--max-draws", "20", cwd=work)
    assert_ok(result)
    decoded = pd.read_csv(work / "decoded.csv")
    assert {"sequence", "time", "value", "viterbi", "p_state_0", "p_state_2"} <= set(decoded)
    assert len(decoded) == 300
    probs = decoded[["p_state_0", "p_state_1", "p_state_2"]].sum(axis=1)
    assert np.allclose(probs, 1.0)

    result = run("plot", "relabelled.nc", "--out", "plots", cwd=work)
    assert_ok(result)
    for kind in ("emissions", "distances", "states", "transitions", "trace"):
        assert (work / "plots" / f"relabelled_{kind}.png").stat().st_size > 1000


@WORK
@pytest.mark.slow
def test_compare_penalises_a_contradicting_prior(work):
    # --serial: the table does not depend on where the fits run (test_compare.py checks it bit
    # for bit); the default worker pool would cost two worker processes' imports (about 10 s).
    result = run(
        "compare", "data.csv", "--states", "3",
        "--prior", "flat", "--prior", "sticky:stickiness=10", "--prior", "strong:B=100",
        "--chains", "1", "--warmup", "40", "--draws", "40", "--serial", "--no-progress",
        "--out", "cmp", cwd=work,
    )  # fmt: skip
    assert_ok(result)
    assert "PSIS-LOO" in result.stdout and "strong" in result.stdout
    table = pd.read_csv(work / "cmp" / "compare.csv", index_col="setting")
    assert list(table.index) == ["flat", "sticky", "strong"]
    assert table.loc["strong", "elpd"] < min(table.loc["flat", "elpd"], table.loc["sticky", "elpd"])
    assert "emission_collapse" in table.loc["strong", "flags"]
    assert table.loc["strong", "sensitivity"].startswith("prior-data conflict")
    for kind in ("elpd", "separation", "sensitivity", "emissions"):
        assert (work / "cmp" / f"compare_{kind}.png").stat().st_size > 1000
    report = json.loads((work / "cmp" / "compare.json").read_text())
    assert report["priors"]["strong"]["B"] == 100.0
    assert (work / "cmp" / "compare.md").read_text().startswith("# Prior comparison")


@pytest.mark.slow
def test_demo_quick(tmp_path):
    result = run_entry_point("demo", "--quick", "--out", "out", cwd=tmp_path)
    assert_ok(result)
    assert (tmp_path / "out" / "demo_nuts.nc").exists()
    assert (tmp_path / "out" / "demo_map.nc").exists()


def test_simulate_poisson_npz_and_fit(tmp_path):
    out = tmp_path / "counts.npz"
    assert main(
        ["simulate", "--states", "2", "--emission", "poisson", "--stickiness", "20",
         "--sequences", "3", "--length", "40", "--out", str(out)]
    ) == 0  # fmt: skip
    with np.load(out) as archive:
        assert archive["values"].shape == (3, 40)
    assert main(
        ["fit", str(out), "--states", "2", "--emission", "poisson", "--method", "viterbi",
         "--restarts", "2", "--no-progress", "--out", str(tmp_path / "counts.nc")]
    ) == 0  # fmt: skip
    assert hp.load(tmp_path / "counts.nc").hmm.emission.family == "poisson"


def test_fit_svi_and_gaussian_npy(tmp_path):
    values = np.concatenate([np.random.default_rng(0).normal(m, 1.0, 30) for m in (-3, 3, -3)])
    np.save(tmp_path / "x.npy", values[None])
    assert main(
        ["fit", str(tmp_path / "x.npy"), "--states", "2", "--emission", "gaussian",
         "--method", "svi", "--restarts", "1", "--steps", "200", "--no-progress",
         "--out", str(tmp_path / "x.nc")]
    ) == 0  # fmt: skip
    mu = hp.load(tmp_path / "x.nc").posterior_mean()["mu"].sort().values
    assert torch.allclose(mu, torch.tensor([-3.0, 3.0], dtype=torch.float64), atol=0.8)


# ---------------------------------------------------------------------------- bad input
def test_missing_file_exits_2_with_one_line(tmp_path):
    result = run("fit", "missing.csv", "--states", "3", cwd=tmp_path)
    assert_bad_input(result, "missing.csv")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_emission_exits_2(tmp_path):
    result = run("fit", "data.csv", "--states", "3", "--emission", "weibull", cwd=tmp_path)
    assert_bad_input(result, "--emission", "weibull")


@WORK
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["fit", "DATA", "--states", "3", "--symbols", "3"], ["symbols", "[0, 4]"]),
        (["compare", "DATA", "--states", "3", "--prior", "bad:Q=1"], ["unknown key 'Q'"]),
        (["compare", "DATA", "--states", "3", "--prior", "bad:B=[1,2"], ["unbalanced"]),
        (["compare", "DATA", "--states", "3", "--prior", "neg:B=-1"], ["neg:B=-1", "> 0"]),
        (["compare", "DATA", "--states", "3", "--prior", "a", "--prior", "a"], ["twice"]),
        (["fit", "DATA", "--states", "0", "--method", "em"], ["num_states"]),
        (["diagnose", "DATA"], ["cannot read"]),
        (["diagnose", "nothing.nc"], ["nothing.nc"]),
        (["plot", "NUTS", "--kind", "pie"], ["--kind", "pie"]),
        (["fit", "DATA", "--states", "2", "--method", "supervised"], ["--state-file"]),
        (["fit", "DATA", "--states", "2", "--emission", "poisson", "--method", "em",
          "--value-column", "count"], ["count"]),
        (["fit", "DATA", "--states", "3", "--method", "nuts", "--batch-size", "2"],
         ["--batch-size", "svi"]),
        (["fit", "DATA", "--states", "3", "--method", "em", "--resume"], ["--resume", "em"]),
        (["fit", "DATA", "--states", "3", "--method", "svi", "--resume"], ["--checkpoint"]),
        (["fit", "DATA", "--states", "3", "--method", "svi", "--chain-dir", "c"],
         ["--chain-dir"]),
        (["store", "DATA", "--symbols", "2"], ["symbols"]),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(argv, words, work, nuts_fit, capsys):
    argv = [
        str(work / "data.csv") if item == "DATA" else str(nuts_fit) if item == "NUTS" else item
        for item in argv
    ]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"hmm-pyro {argv[0]}: error: ")
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("argv", "word"),
    [(["fit", "data.csv"], "--states"), (["fit", "x.csv", "--states", "abc"], "abc")],
)
def test_argparse_errors_exit_2_with_one_line(argv, word, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("hmm-pyro fit: error: ") and word in lines[0]


def test_parse_prior_spec():
    assert parse_prior_spec("flat") == ("flat", {})
    assert parse_prior_spec("s:stickiness=10,B=[[5,1],[1,5]]") == (
        "s",
        {"stickiness": 10, "B": [[5, 1], [1, 5]]},
    )
    for spec in ("", ":B=1", "x:", "x:B", "x:B=1,B=2", "x:B=true", "x y:B=1"):
        with pytest.raises(ValueError, match="--prior"):
            parse_prior_spec(spec)


@WORK
def test_store_then_streaming_svi_with_checkpoint_and_resume(work):
    """``store`` writes a lazily read store; ``fit`` on it runs mini-batch SVI, checkpointed;
    ``--resume`` of the finished run reproduces the saved result exactly."""
    assert_ok(run("store", "data.csv", "--out", "store.nc", cwd=work))
    common = (
        "fit", "store.nc", "--states", "3", "--method", "svi", "--steps", "60",
        "--batch-size", "2", "--no-progress", "--checkpoint", "svi.ckpt",
    )  # fmt: skip
    assert_ok(run(*common, "--out", "stream.nc", cwd=work))
    assert (work / "svi.ckpt").is_file()
    assert_ok(run(*common, "--resume", "--out", "stream_resumed.nc", cwd=work))
    first, second = hp.load(work / "stream.nc"), hp.load(work / "stream_resumed.nc")
    for name in ("pi", "A", "B"):
        np.testing.assert_array_equal(
            first.idata.posterior[name].values, second.idata.posterior[name].values
        )


@WORK
def test_nuts_chain_dir_reuses_finished_chains(work):
    common = (
        "fit", "data.csv", "--states", "3", "--method", "nuts", "--chains", "2",
        "--warmup", "20", "--draws", "20", "--serial", "--no-progress", "--chain-dir", "chains",
    )  # fmt: skip
    assert_ok(run(*common, "--out", "chains1.nc", cwd=work))
    assert sorted(path.name for path in (work / "chains").iterdir()) == [
        "chain_0.npz",
        "chain_1.npz",
    ]
    assert_ok(run(*common, "--out", "chains2.nc", cwd=work))
    first, second = hp.load(work / "chains1.nc"), hp.load(work / "chains2.nc")
    np.testing.assert_array_equal(
        first.idata.posterior["B"].values, second.idata.posterior["B"].values
    )
    assert list(second.attrs["reused_chains"]) == [0, 1]
