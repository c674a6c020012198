"""The Analysis tab on the demo model (Pilot): the plot and the table show `analyse`'s numbers,
the layer slider never runs the model again, Esc cancels, P writes a PNG, bad input is a
notification; and the braille plot puts known points in the expected cells."""

from __future__ import annotations

import shutil
import threading

import pytest
import torch
from rich.text import Text
from textual.widgets import Checkbox, DataTable, Input, Label, Select, Static
from tui_helpers import notifications, settle, type_into

from lsn_explorer.core.latent import states as latent_states
from lsn_explorer.core.latent.analyses import analyse, gather, load_texts
from lsn_explorer.core.latent.conditions import build_conditions
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.tui.panels.analysis import AnalysisPanel
from lsn_explorer.tui.widgets.plots import AXIS_WIDTH, DOT_BITS, PALETTE, Canvas, Plot, render_chart, render_figure, tick
from lsn_explorer.tui.widgets.slider import LayerSlider
from lsn_explorer.workbench.latent import Chart, Figure, Series
from lsn_explorer.workbench.state import SwitchRow

SIZE = (160, 50)
LINES = 40
ROW = "type1:ja=zero@last"


@pytest.fixture(scope="module")
def analysis_template(demo, tmp_path_factory):
    """Session "an": a hand-made "type1" set (ja and zh neurons in layers 1–3, seeded), the row
    type1:ja=zero@last switched on, languages en, ja, zh. No states computed yet."""
    from lsn_explorer.workbench.bench import Workbench

    root = tmp_path_factory.mktemp("analysis")
    workbench = Workbench.open("an", root)
    generator = torch.Generator().manual_seed(0)
    neurons = {lang: torch.stack([torch.randint(1, 4, (30,), generator=generator),
                                  torch.randperm(demo.d_ff, generator=generator)[:30]], 1) for lang in ("ja", "zh")}
    neuron_set = NeuronSet("manual", {}, demo.n_layers, demo.d_ff, neurons)
    workbench.session.add("neuron_set", "type1", {"set": neuron_set.to_json()}, {})
    workbench.set_rows([SwitchRow(ROW, True)])
    workbench.set_languages(["en", "ja", "zh"])
    workbench.close()
    return root / "an"


@pytest.fixture
def make_analysis_app(analysis_template, demo, tmp_path):
    from lsn_explorer.tui.app import create_app

    shutil.copytree(analysis_template, tmp_path / "an")
    return lambda: create_app(session="an", root=tmp_path, handle=demo)


@pytest.fixture
def model_reads(monkeypatch):
    """How many times the model read text for states (each `text_states` call is one tensor)."""
    calls = []
    real = latent_states.text_states

    def counted(*args, **kwargs):
        calls.append(args[1][:1])
        return real(*args, **kwargs)

    monkeypatch.setattr(latent_states, "text_states", counted)
    return calls


async def open_tab(app, pilot, *, analysis="parallel", conditions="random", langs=None, lines=LINES) -> AnalysisPanel:
    await settle(app, pilot)
    await pilot.press("f10")
    await pilot.pause()
    panel = app.query_one(AnalysisPanel)
    panel.query_one("#analysis-kind", Select).value = analysis
    panel.query_one("#analysis-conditions", Select).value = conditions
    if langs is not None:
        panel.query_one("#analysis-langs", Input).value = langs
    panel.query_one("#analysis-lines", Input).value = str(lines)
    await pilot.pause()
    return panel


async def compute(app, pilot, panel: AnalysisPanel) -> None:
    panel.query_one("#analysis-kind", Select).focus()
    await pilot.press("ctrl+t")
    await settle(app, pilot)
    await settle(app, pilot)  # the result worker the computed states start


def plot_text(panel: AnalysisPanel) -> str:
    return panel.query_one(Plot).render().plain


def table_cells(panel: AnalysisPanel) -> list[list[str]]:
    grid = panel.query_one("#analysis-table", DataTable)
    return [[str(cell) for cell in grid.get_row_at(i)] for i in range(grid.row_count)]


def reference_states(app, demo, conditions_text):
    """The states again, straight from core (the session's cache holds what the tab computed)."""
    session = app.workbench.session
    texts = load_texts(["en", "ja", "zh"], None, LINES)
    return gather(demo, session, texts, build_conditions(conditions_text, True, session))


async def test_parallel_plot_and_table_show_analyse_numbers(make_analysis_app, demo):
    app = make_analysis_app()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_tab(app, pilot)
        assert panel.query_one("#analysis-langs", Input).value == "en,ja,zh"  # the Languages tab's
        assert ROW in str(panel.query_one("#analysis-rows", Static).content)
        await compute(app, pilot, panel)
        shown = notifications(app)
        assert not [m for m in shown if "error" in m or "failed" in m], shown
        expected = analyse(reference_states(app, demo, ["type1:{lang}=zero@last"]), "parallel")
        assert [c["key"] for c in expected["conditions"]] == ["none", "iv1", "random1"]
        assert panel.current is not None and panel.current["results"] == expected["results"]
        # The table: one row per condition and L2, the summary's numbers as printed.
        summary = expected["summary"]["conditions"]
        layer = panel.query_one(LayerSlider).value
        assert layer == expected["depths"] // 2
        rows = table_cells(panel)
        assert rows == [[key, lang, f"{row['mid_gap']:.4f}", f"{row['mid_shrink']:.4f}",
                         f"{expected['results'][key][lang]['gap'][layer]:.4f}"]
                        for key, per_lang in summary.items() for lang, row in per_lang.items()]
        assert "middle depths" in str(panel.query_one("#analysis-table-title", Label).content)
        # Intervening on ja and zh's own neurons changes their parallel cosine; English text is read as it is.
        assert expected["results"]["iv1"]["ja"]["parallel"] != expected["results"]["none"]["ja"]["parallel"]
        # The plot: the gap chart's axis runs from the smallest to the largest gap of any curve.
        text = plot_text(panel)
        gaps = [v for per_lang in expected["results"].values() for curves in per_lang.values() for v in curves["gap"]]
        span = max(gaps) - min(gaps)
        assert tick(max(gaps), span) in text and tick(min(gaps), span) in text
        assert "gap (parallel − non-parallel)" in text and "type1:{lang}=zero@last" in text
        assert "random · type1:{lang}=zero@last" in text


async def test_the_layer_slider_never_runs_the_model_again(make_analysis_app, model_reads):
    app = make_analysis_app()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_tab(app, pilot, analysis="pca", conditions="rows")
        await compute(app, pilot, panel)
        reads = len(model_reads)
        # en, ja, zh without interventions; ja and zh with their own neurons off. English is read
        # once: its pairings are the same lines, and the set has no English neurons to switch off.
        assert reads == 5
        middle = panel.current["layer"]
        assert f"depth {middle} · none" in plot_text(panel)
        slider = panel.query_one(LayerSlider)
        slider.focus()
        for key, depth in (("right", middle + 1), ("minus", middle), ("minus", middle - 1), ("home", 0)):
            await pilot.press(key)
            await settle(app, pilot)
            assert slider.value == depth and panel.current["layer"] == depth
            assert f"depth {depth} · none" in plot_text(panel)
            assert panel.current == analyse(panel.view.states, "pca", layer=depth)
        # The centroid matrix follows the slider too.
        panel.query_one("#analysis-kind", Select).value = "centroids"
        await settle(app, pilot)
        assert panel.current["layer"] == 0
        assert str(panel.query_one("#analysis-table-title", Label).content) == "centroid cosine at depth 0 (none)"
        assert table_cells(panel)[1][:3] == ["ja", f"{panel.current['results']['none']['matrix'][1][0]:.3f}", "1.000"]
        # Computing the same request again reads every state from the session.
        await compute(app, pilot, panel)
        assert len(model_reads) == reads
        assert "depths 0–6" in str(panel.query_one("#analysis-status", Static).content)


async def test_escape_cancels_and_the_next_compute_finishes(make_analysis_app, monkeypatch):
    started = threading.Event()
    real = latent_states.text_states

    def slow(handle, sentences, plan=None, *, cancel=None, **kwargs):
        started.set()
        for _ in range(500):  # until Esc sets the lane's cancel event
            if cancel is not None and cancel.is_set():
                break
            threading.Event().wait(0.01)
        return real(handle, sentences, plan, cancel=cancel, **kwargs)

    app = make_analysis_app()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_tab(app, pilot, conditions="none")
        monkeypatch.setattr(latent_states, "text_states", slow)
        panel.query_one("#analysis-kind", Select).focus()
        await pilot.press("ctrl+t")
        for _ in range(200):
            if started.is_set():
                break
            await pilot.pause(0.02)
        assert app.lane == "latent states"
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.lane is None and panel.current is None
        assert any("latent states: cancelled" in m for m in notifications(app))
        assert str(panel.query_one("#analysis-status", Static).content).startswith("cancelled")
        monkeypatch.setattr(latent_states, "text_states", real)
        await compute(app, pilot, panel)
        assert panel.current is not None and panel.current["analysis"] == "parallel"


async def test_p_writes_the_png(make_analysis_app):
    app = make_analysis_app()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_tab(app, pilot, analysis="mknn", conditions="none")
        panel.query_one(LayerSlider).focus()
        await pilot.press("p")
        await pilot.pause()
        assert any("compute an analysis first" in m for m in notifications(app))
        await compute(app, pilot, panel)
        panel.query_one(LayerSlider).focus()
        await pilot.press("p")
        await settle(app, pilot)
        written = [m for m in notifications(app) if "figure written to" in m]
        assert written, notifications(app)
        path = written[-1].split("figure written to ", 1)[1]
        assert path.endswith("analysis-mknn-en-ja-zh-k10.png")
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("field, text, analysis, expected", [
    ("#analysis-langs", "en,de", "parallel", ["no corpus text for de", "type one of those in the languages field"]),
    ("#analysis-langs", "en", "parallel", ["only English was given", "at least one more language in the languages field"]),
    ("#analysis-langs", "en,xx", "parallel", ["unknown language code 'xx'"]),
    ("#analysis-lines", "forty", "parallel", ["lines must be a whole number"]),
    ("#analysis-lines", "1", "parallel", ["lines 1 are too few to compare anything", "type at least 2"]),
    ("#analysis-k", "50", "mknn", ["k = 50 neighbours needs more than 50 sentences; there are 40",
                                   "lower k or raise lines in this tab"]),
])
async def test_bad_input_is_a_notification_and_keeps_what_is_shown(make_analysis_app, field, text, analysis, expected):
    app = make_analysis_app()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_tab(app, pilot, conditions="none")
        await compute(app, pilot, panel)
        before, plotted = panel.current, plot_text(panel)
        panel.query_one("#analysis-kind", Select).value = analysis
        await settle(app, pilot)
        if analysis == "parallel":
            assert panel.current is before
        await type_into(pilot, field, text)
        await pilot.press("enter")
        await settle(app, pilot)
        errors = [m for m in notifications(app) if all(part in m for part in expected)]
        assert errors, notifications(app)
        assert "--" not in errors[0]  # the hint names this tab's fields, not the CLI's flags
        assert app.lane is None and app.is_running
        if analysis == "parallel":
            assert panel.current is before and plot_text(panel) == plotted
        assert panel.query_one(field, Input).value == text  # nothing typed is lost


async def test_rows_without_a_switched_on_row_and_a_list_with_random(make_analysis_app):
    app = make_analysis_app()
    async with app.run_test(size=SIZE) as pilot:
        app.workbench.set_rows([SwitchRow(ROW, False)])
        panel = await open_tab(app, pilot, conditions="rows")
        await compute(app, pilot, panel)
        assert any("no intervention row is switched on" in m and "Interventions tab (F4)" in m
                   for m in notifications(app))
        app.workbench.set_rows([SwitchRow("1.5,2.7=zero", True)])
        panel.query_one("#analysis-conditions", Select).value = "random"
        await compute(app, pilot, panel)
        assert any("needs a stored neuron set" in m for m in notifications(app))
        assert panel.current is None and app.lane is None
        # Without "each language's own neurons", the row acts only on the language it names.
        app.workbench.set_rows([SwitchRow(ROW, True)])
        panel.query_one("#analysis-each", Checkbox).value = False
        panel.query_one("#analysis-conditions", Select).value = "rows"
        await compute(app, pilot, panel)
        applied = panel.current["applied"]["iv1"]
        assert [spec.split(":", 1)[1] for spec in applied["ja"]] == ["ja=zero@last"]  # pinned: #<record id>:ja=…
        assert applied["zh"] == [] and applied["en"] == []


# -- the plot widget ----------------------------------------------------------------------------
async def test_the_table_is_drawn_at_its_cells_width_even_when_painted_before_idle(make_analysis_app):
    # Textual sizes auto-width columns on an idle event and keeps the lines it painted before under
    # the same cache key: a paint between filling the table and that idle event stuck at the
    # headers' width ("1.  0."), which is what CI's snapshot caught under load. Paint in between here.
    from lsn_explorer.workbench.latent import TableView

    app = make_analysis_app()
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await open_tab(app, pilot)
        numbers = TableView("similarity", ["", "en", "ja"], [["en", 1.0, 0.93612], ["ja", 0.93612, 1.0]], digits=3)
        chart = Figure([Chart("c", "lines", [Series("ja", [0, 1], [0, 1], 1)])], ["en", "ja"], [("solid", "none")])
        panel._draw(panel._serial, {}, chart, numbers)
        grid = panel.query_one("#analysis-table", DataTable)
        early = [grid.render_line(y).text for y in range(3)]  # before any idle event
        await pilot.pause()
        await pilot.pause()
        lines = [grid.render_line(y).text for y in range(3)]
        assert early == lines
        assert "ja  0.936  1.000" in lines[2], lines


def test_points_land_in_the_expected_braille_cells():
    # 4 × 2 cells = 8 × 8 dots: (0, 0) is the bottom-left dot, (1, 1) the top-right one.
    chart = Chart("t", "scatter", [Series("ja", [0.0, 1.0], [0.0, 1.0], group=1, style="points")])
    lines = render_chart(chart, AXIS_WIDTH + 4, 5)
    assert [line.cell_len for line in lines] == [AXIS_WIDTH + 4] * 5
    top, bottom = lines[1], lines[2]
    assert top.plain[AXIS_WIDTH:] == "   " + chr(0x2800 + DOT_BITS[1][0])
    assert bottom.plain[AXIS_WIDTH:] == chr(0x2800 + DOT_BITS[0][3]) + "   "
    assert top.plain.startswith("   1.00 ┤") and bottom.plain.startswith("   0.00 ┤")
    assert _style_at(top, AXIS_WIDTH + 3) == PALETTE[1]


def test_line_patterns_and_the_depth_axis():
    for pattern, dots in (("solid", 12), ("dashed", 8), ("dotted", 4)):
        canvas = Canvas(6, 1)
        canvas.line(0, 2, 11, 2, "red", pattern)
        assert sum(bin(bits).count("1") for bits in canvas.bits[0]) == dots, pattern
    chart = Chart("gap", "lines", [Series("ja", [0, 1, 2, 3, 4, 5, 6], [0, 1, 0, 1, 0, 1, 0], 1)], marker=3, band=(2, 4))
    lines = render_chart(chart, AXIS_WIDTH + 28, 10)
    axis, labels = lines[-2].plain[AXIS_WIDTH:], lines[-1].plain
    assert axis[14] == "▲" and axis[9:19].replace("▲", "━") == "━" * 10 and axis[0] == axis[-1] == "─"
    assert labels.split() == ["depth", "0", "1", "2", "3", "4", "5", "6"]
    # Every measured depth is drawn: the zigzag touches the top row at each odd depth.
    top = lines[1].plain[AXIS_WIDTH:]
    assert [column for column, char in enumerate(top) if char != " "] == [4, 5, 13, 14, 22, 23]


def test_a_figure_too_wide_for_the_terminal_says_what_it_left_out():
    charts = [Chart(f"c{i}", "lines", [Series("ja", [0, 1], [0, 1], 1)]) for i in range(3)]
    figure = Figure(charts, ["en", "ja"], [("solid", "none"), ("dashed", "type1:{lang}=zero@last")])
    text = render_figure(figure, 80, 20).plain
    assert "c0" in text and "c1" in text and "c2" not in text
    assert "+1 more chart" in text and "── none" in text and "╌╌ type1:{lang}=zero@last" in text
    assert "c2" in render_figure(figure, 120, 20).plain


def _style_at(text: Text, offset: int) -> str:
    return next(str(span.style) for span in text.spans if span.start <= offset < span.end)


def test_analysis_tab_snapshot(snap_compare, make_analysis_app):
    # En–L2 centroid similarity for en, ja, zh without interventions, at 120×40. Centroids, not
    # parallel vs non-parallel: those gaps are ~1e-4 and their fourth decimal followed the float
    # summation order once; centroid cosines (0.35–0.97) do not sit on a printed digit's edge.
    async def run(pilot) -> None:
        app = pilot.app
        panel = await open_tab(app, pilot, analysis="centroids", conditions="none")
        await compute(app, pilot, panel)
        # The slider's range change and the select's message may each start one more (identical)
        # analysis worker after the first has finished: wait until none runs.
        for _ in range(3):
            await settle(app, pilot)
        quiet = 0  # polls in a row with no worker running
        for _ in range(200):  # 10 s at most: a worker that never ends fails below, not hangs
            quiet = 0 if any(worker.is_running for worker in app.workers) else quiet + 1
            if quiet == 3:
                break
            await pilot.pause(0.05)
        assert quiet == 3, "an analysis worker was still running after 10 s"
        app.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(make_analysis_app(), terminal_size=(120, 40), run_before=run)
