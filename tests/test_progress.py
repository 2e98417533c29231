"""Progress: bars on a terminal; off a terminal one plain line per interval (fake clock)."""

import io

import pytest

import hmm_pyro as hp
from hmm_pyro import _progress
from hmm_pyro._progress import Progress, format_seconds


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def lines_of(stream):
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text  # nothing a log file cannot show
    return text.splitlines()


def test_off_a_terminal_one_line_per_interval_then_a_last_line():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress([100], desc="EM", stream=stream, clock=clock, interval=10, heartbeat=False)
    progress.update(5)
    clock.now += 9.9
    progress.update(5)
    assert stream.getvalue() == ""  # nothing before the first interval
    clock.now += 0.1
    progress.update(15)  # 25 of 100 after 10 s
    assert lines_of(stream) == ["EM: 25/100 (25%), 10s elapsed, about 30s left"]
    clock.now += 5
    progress.update(25)
    assert len(lines_of(stream)) == 1  # the next line waits for the next interval
    clock.now += 70
    progress.update(50)
    clock.now += 5
    progress.close()  # nothing new since the last line: no closing line
    assert lines_of(stream)[1:] == ["EM: 100/100 (100%), 1m25s elapsed"]
    progress.update(1)  # after close: ignored
    assert len(lines_of(stream)) == 2


def test_the_closing_line_shows_the_final_counts():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress([10], desc="SVI", stream=stream, clock=clock, interval=10, heartbeat=False)
    clock.now += 10
    progress.update(4)
    clock.now += 3
    progress.update(2)  # stopped early at 6 of 10
    progress.close()
    assert lines_of(stream) == [
        "SVI: 4/10 (40%), 10s elapsed, about 15s left",
        "SVI: 6/10 (60%), 13s elapsed, about 9s left",
    ]


def test_lines_keep_coming_while_no_task_reports():
    """The heartbeat (here driven by hand) writes lines while a long task is silent."""
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress([4], desc="fits", stream=stream, clock=clock, interval=10, heartbeat=False)
    for _ in range(3):
        clock.now += 10
        progress.tick()
    progress.set_postfix("flat")
    progress.update(1)
    progress.close()
    assert lines_of(stream) == [
        "fits: 0/4 (0%), 10s elapsed",
        "fits: 0/4 (0%), 20s elapsed",
        "fits: 0/4 (0%), 30s elapsed",
        "fits: 1/4 (25%), 30s elapsed, about 1m30s left (flat)",
    ]


def test_several_tasks_share_one_line_with_their_counts():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress([10, 10], ["chain 0", "chain 1"], desc="NUTS", stream=stream, clock=clock,
                        interval=10, heartbeat=False)  # fmt: skip
    progress.update(4, task=0)
    clock.now += 12
    progress.update(2, task=1)
    assert lines_of(stream) == [
        "NUTS: 6/20 (30%), 12s elapsed, about 28s left [chain 0 4/10; chain 1 2/10]"
    ]


def test_a_short_run_and_a_disabled_one_write_nothing():
    stream, clock = io.StringIO(), FakeClock()
    with Progress([3], desc="quick", stream=stream, clock=clock, heartbeat=False) as progress:
        progress.update(3)
        clock.now += 9
    disabled = Progress([3], desc="off", enabled=False, stream=stream, clock=clock)
    clock.now += 100
    disabled.update(3)
    disabled.tick()
    disabled.close()
    assert stream.getvalue() == ""


def test_the_heartbeat_thread_stops_on_close():
    progress = Progress([1], desc="x", stream=io.StringIO(), interval=3600)
    thread = progress._thread
    assert thread is not None and thread.is_alive()
    progress.close()
    assert not thread.is_alive()


def test_on_a_terminal_tqdm_draws_one_bar_per_task():
    stream = Terminal()
    with Progress([5, 5], ["chain 0", "chain 1"], desc="NUTS", stream=stream) as progress:
        progress.update(5, task=0)
        progress.update(2, task=1)
        assert progress._thread is None and len(progress._bars) == 2
    text = stream.getvalue()
    assert "chain 0" in text and "chain 1" in text and "5/5" in text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0s"), (59.4, "59s"), (61, "1m01s"), (3600 * 2 + 185, "2h03m")]
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.fixture
def every_update_writes_a_line(monkeypatch):
    monkeypatch.setattr(_progress, "LINE_INTERVAL", 0.0)


@pytest.fixture(scope="module")
def tiny():
    hmm = hp.HMM(2, hp.Categorical(num_symbols=3))
    return hmm, hp.Sequences([[0, 1, 2, 2, 1, 0, 0, 2], [1, 1, 0, 2, 2]])


@pytest.mark.parametrize(
    ("run", "label"),
    [
        (lambda hmm, data: hp.fit_em(hmm, data, restarts=1, max_iter=3, seed=0), "EM: "),
        (lambda hmm, data: hp.fit_svi(hmm, data, restarts=1, steps=3, num_draws=2, seed=0),
         "SVI"),
        (lambda hmm, data: hp.fit_nuts(hmm, data, chains=2, warmup=5, draws=5, seed=0,
                                       parallel=False, relabel=False), "NUTS: "),
    ],
    ids=["em", "svi", "nuts"],  # fit_map shares the SVI route (svi_restarts)
)  # fmt: skip
def test_long_runs_report_off_a_terminal(run, label, tiny, every_update_writes_a_line, capsys):
    """Each route's progress reaches stderr off a terminal (pytest captures it: not a TTY)."""
    hmm, data = tiny
    run(hmm, data)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith(label) for line in lines), lines
    assert "\r" not in "".join(lines)
