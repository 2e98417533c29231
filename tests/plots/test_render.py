"""The layout check itself: it finds a clipped title and colliding tick labels."""

from __future__ import annotations

import matplotlib.pyplot as plt

from tests.plots.render import check_layout, checked_savefig, drawn_texts, layout_problems


def test_a_title_wider_than_the_figure_is_clipped():
    figure, ax = plt.subplots(figsize=(3, 2), layout="constrained")
    ax.set_title("a title far too long for a figure three inches wide, so it runs off")
    problems = layout_problems(figure)
    assert len(problems) == 1 and problems[0].startswith("clipped: 'a title far too long")


def test_crowded_tick_labels_overlap_and_ticks_outside_the_view_are_not_counted():
    figure, ax = plt.subplots(figsize=(3, 2), layout="constrained")
    ax.set_xticks(range(27), [f"symbol {k}" for k in range(27)])
    assert any(problem.startswith("overlap: 'symbol 0'") for problem in layout_problems(figure))
    ax.set_xlim(-0.5, 0.5)  # only 'symbol 0' is in view: the others are not drawn
    assert [text.text for text in drawn_texts(figure)] == [
        "symbol 0",
        "0.0",
        "0.2",
        "0.4",
        "0.6",
        "0.8",
        "1.0",
    ]
    assert check_layout(figure)


def test_checked_savefig_refuses_to_save_a_clipped_figure(tmp_path):
    figure, ax = plt.subplots(figsize=(3, 2), layout="constrained")
    ax.set_ylabel("fine")
    with checked_savefig() as saved:
        figure.savefig(tmp_path / "fine.png")
        ax.set_title("a title far too long for a figure three inches wide, so it runs off")
        try:
            figure.savefig(tmp_path / "clipped.png")
        except AssertionError as error:
            assert "clipped.png" in str(error)
        else:
            raise AssertionError("a clipped figure was saved")
    assert saved == ["fine.png"] and not (tmp_path / "clipped.png").exists()
