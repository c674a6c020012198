"""The app shell: tabs for the six flows plus background jobs, their results and latent-space
analyses, the status line, the model lane and the command palette.

`create_app` builds the app (tests start it on the demo model with a temporary session root).
All model work runs through `run_model_task`: one lane, one thread at a time (lane.py), a plain
`threading.Event` handed down to `core` for cancelling. Workers reach the UI only through
`call_from_thread` and `post_message`.

The app is the panels' `PanelHost` (host.py) and the router of their messages (messages.py): a
panel asking for another tab's work posts a message, and the app hands it to that tab's panel.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Static, TabbedContent

from lsn_explorer.errors import LsnError
from lsn_explorer.tui.hints import app_hint
from lsn_explorer.tui.lane import run_in_lane
from lsn_explorer.tui.messages import (
    AdapterChosen,
    JobEnded,
    LaneFreed,
    ModelLoaded,
    ModelProgressed,
    RerunRequested,
    ResultsRequested,
    SessionChanged,
)
from lsn_explorer.tui.panels.base import Panel
from lsn_explorer.tui.panels.generate import GeneratePanel
from lsn_explorer.tui.panels.history import HistoryPanel
from lsn_explorer.tui.panels.interventions import InterventionsPanel
from lsn_explorer.tui.panels.jobs import JobsPanel
from lsn_explorer.tui.panels.languages import LanguagesPanel
from lsn_explorer.tui.panels.neurons import NeuronsPanel
from lsn_explorer.tui.panels.results import ResultsPanel
from lsn_explorer.tui.panels.score import ScorePanel
from lsn_explorer.tui.screens.model import ModelScreen
from lsn_explorer.tui.screens.sessions import SessionScreen
from lsn_explorer.tui.tabs import TABS, Tabs
from lsn_explorer.tui.widgets.footer import KeyFooter
from lsn_explorer.workbench.bench import Workbench

PanelT = TypeVar("PanelT", bound=Panel)


class LsnApp(App[None]):
    """lsn-explorer's terminal workbench."""

    CSS_PATH = "app.tcss"
    TITLE = "lsn-explorer"
    AUTO_FOCUS = None  # focus goes where each panel puts it, not to the first widget found
    BINDINGS = [
        Binding("f1", "help", "Help"),
        *[Binding(key, f"show_tab('{tab}')", title, show=False) for tab, title, key, _panel in TABS],
        Binding("ctrl+g", "generate", "Generate", priority=True),
        Binding("ctrl+r", "score", "Score", priority=True),
        # Not a priority binding: in a text field Ctrl+E keeps its usual meaning (end of line).
        Binding("ctrl+e", "evaluate", "Evaluate"),
        Binding("ctrl+f", "finetune", "Fine-tune"),  # likewise: Ctrl+F in a text field deletes a word
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, *, model: str | None = None, four_bit: bool = False, session: str | None = None,
                 root: str | Path | None = None, corpus_dir: str | Path | None = None, autoload: bool = True,
                 handle: Any = None) -> None:
        """`model`/`four_bit`: what the model worker loads (None: the demo model); `session`: open it
        directly (None: the picker); `root`: the session store; `corpus_dir`: per-language text files;
        `autoload`: load the model once a session is open; `handle`: an already loaded ModelHandle
        to use instead (tests, or a Python session that has one)."""
        super().__init__()
        # No animations unless TEXTUAL_ANIMATIONS asks: the tab underline's slide redrew ~20 frames per switch.
        self.animation_level = "none" if "TEXTUAL_ANIMATIONS" not in os.environ else self.animation_level
        self.preloaded = handle
        self.model_source, self.four_bit = model, four_bit
        self.session_name, self.root, self.corpus_dir = session, root, corpus_dir
        self.autoload = autoload
        self.workbench: Workbench | None = None
        self.model_label = "no model"
        self.lane: str | None = None
        self._cancel = threading.Event()

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Tabs()
        yield Static(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._show_status()
        if self.session_name:
            self.open_session(self.session_name)
        else:
            self.push_screen(SessionScreen(self.root), callback=self.open_session)

    # -- sessions and the model ----------------------------------------------------------------
    def open_session(self, name: str | None) -> None:
        """Open (or create) a session and restore every panel from it; the model stays loaded."""
        if not name:
            if self.workbench is None:
                self.call_later(self.action_quit)
            return
        try:
            workbench = Workbench.open(name, self.root, corpus_dir=self.corpus_dir)
        except LsnError as exc:
            self.show_error(exc)
            self.push_screen(SessionScreen(self.root), callback=self.open_session)
            return
        if self.workbench is not None:
            workbench.handle = self.workbench.handle
            self.workbench.close()
        self.workbench = workbench
        self.sub_title = f"session {workbench.session.name}"
        for panel in self._panels():
            panel.restore(workbench)
        self._focus_front_panel()  # so a panel key (Ctrl+T) works before anything is clicked
        self._show_status()
        if workbench.handle is None and self.preloaded is not None:
            workbench.handle = self.preloaded
            self.post_message(ModelLoaded(self.preloaded.describe()))
            if workbench.state.adapter and self.preloaded.adapter != workbench.state.adapter:
                self.post_message(AdapterChosen(workbench.state.adapter))  # the session's choice, on a fresh load
        elif workbench.handle is None and self.autoload:
            # After the first paint: the worker's torch import holds the GIL for seconds.
            self.call_after_refresh(self.load_model, self.model_source, self.four_bit)

    def _focus_front_panel(self) -> None:
        pane = self.query_one(TabbedContent).active_pane
        found = pane.query(Panel) if pane is not None else None
        if found:
            found.first().focus_default()

    def load_model(self, source: str | None, four_bit: bool = False) -> None:
        workbench = self.workbench
        if workbench is None:
            return

        def call(cancel: threading.Event) -> dict[str, Any]:
            gc.unfreeze()  # the model being replaced may be collected again (see on_model_loaded)
            return workbench.load_model(source, four_bit=four_bit,
                                        progress=lambda text: self.post_message(ModelProgressed(text)))

        self.run_model_task("loading model", call, lambda description: self.post_message(ModelLoaded(description)))

    def on_model_progressed(self, message: ModelProgressed) -> None:
        self._show_status(message.text)

    def on_model_loaded(self, message: ModelLoaded) -> None:
        gc.freeze()  # model, libraries, widgets live on: full collections walked them for ~250 ms while streaming
        d = message.description
        source = str(d["source"])
        name = Path(source).name if Path(source).exists() else source
        quant = " nf4" if d.get("quantization") else ""
        adapter = f" + adapter {d['adapter']}" if d.get("adapter") else ""
        self.model_label = (f"{name}{adapter} ({d['family']}, {d['n_layers']} layers × {d['d_ff']} neurons, "
                            f"{d['dtype']}{quant})")
        self._show_status()
        if d.get("adapter_error"):
            self.notify(str(d["adapter_error"]), title="adapter not loaded", severity="warning", timeout=8,
                        markup=False)
        for panel in self._panels():
            panel.model_ready()

    # -- the model lane ------------------------------------------------------------------------
    def run_model_task(self, label: str, call: Callable[[threading.Event], Any],
                       done: Callable[[Any], None] | None = None) -> bool:
        """Run `call(cancel)` in the model worker; `done(result)` then runs on the UI thread.

        Refused with a notification while another model task runs (one model lane)."""
        if not self.lane_free():
            return False
        self.lane = label
        self._cancel = threading.Event()
        self._show_status()
        self._lane_worker(label, call, done, self._cancel)
        return True

    def lane_free(self) -> bool:
        """True when a model task could start now; otherwise says why (a notification)."""
        if self.workbench is None:
            self.notify("open a session first", severity="warning", markup=False)
            return False
        if self.lane is not None:
            self.notify(f"{self.lane} is running: wait, or press Esc to cancel it", severity="warning", markup=False)
            return False
        return True

    @work(group="model", exit_on_error=False)
    async def _lane_worker(self, label: str, call: Callable[[threading.Event], Any],
                           done: Callable[[Any], None] | None, cancel: threading.Event) -> None:
        try:
            result = await run_in_lane(call, cancel)  # a thread the app need not wait for (lane.py)
            if done is not None:
                done(result)
        except LsnError as exc:
            if not cancel.is_set():  # a cancelled run is reported once, by on_lane_freed
                self.show_error(exc)
        except Exception as exc:  # an engine bug: keep the app alive, keep the traceback in the session
            if self.workbench is not None:
                self.workbench.session.log(f"{label} failed:\n{''.join(traceback.format_exception(exc))}",
                                           level="error")
            self.notify(f"{label} failed unexpectedly: {exc} (traceback in the session's events)",
                        severity="error", markup=False)
        finally:
            self.post_message(LaneFreed(label, cancel.is_set()))

    def on_lane_freed(self, message: LaneFreed) -> None:
        self.lane = None
        self._sync_pickers()  # an adapter load that failed or was cancelled leaves the choice as it was
        self._show_status()
        if message.cancelled:
            self.notify(f"{message.label}: cancelled", markup=False)
        for panel in self._panels():
            panel.lane_freed(message.cancelled)

    def on_adapter_chosen(self, message: AdapterChosen) -> None:
        """A picker chose an adapter: load the model afresh with it (pickers follow when it is
        loaded; a refused or failed load puts them back)."""
        workbench = self.workbench
        if workbench is None:
            return
        what = f"loading adapter {message.name}" if message.name else "loading the base model"

        def call(cancel: threading.Event) -> dict[str, Any]:
            return workbench.use_adapter(message.name,
                                         progress=lambda text: self.post_message(ModelProgressed(text)))

        if not self.run_model_task(what, call, lambda description: self.post_message(ModelLoaded(description))):
            self._sync_pickers()

    def _sync_pickers(self) -> None:
        from lsn_explorer.tui.widgets.adapter_picker import AdapterPicker

        if self.workbench is not None:
            for picker in self.screen_stack[0].query(AdapterPicker):
                picker.sync(self.workbench)

    def on_session_changed(self, message: SessionChanged) -> None:
        for panel in self._panels():
            panel.records_changed()

    async def on_rerun_requested(self, message: RerunRequested) -> None:
        """History's R: the entry goes to the tab that made it, which runs it with the current rows."""
        target = await (self._bring("generate", GeneratePanel) if message.entry.kind == "generation"
                        else self._bring("score", ScorePanel))
        # Focus moves into the target tab: left on the hidden History table, Textual would move it
        # to History's next widget and bring that tab back to the front.
        target.focus_default()
        target.rerun(message.entry.request)

    def on_job_ended(self, message: JobEnded) -> None:
        """A background job ended (seen by the Jobs tab's poll): say so on any tab, and let the
        Results tab show the evaluation's table."""
        row = message.row
        if row.state == "finished":
            where = ("; its table is in the Results tab (F9)" if row.eval_name else
                     "; choose its adapter in the Generate or Score tab" if row.kind == "finetune" else "")
            self.notify(f"job {row.id} finished: {row.name}{where}", title="job finished", timeout=10, markup=False)
        elif row.state == "failed":
            self.notify(f"job {row.id} failed: {row.error or row.progress}\nits log: Jobs tab (F8), L",
                        title="job failed", severity="error", timeout=10, markup=False)
        else:
            self.notify(f"job {row.id} {'was ' if row.state == 'interrupted' else ''}{row.state}: {row.name}; "
                        "what it finished is kept (Jobs tab, F8, R resumes)", severity="warning", timeout=10,
                        markup=False)
        for panel in self._panels():
            if isinstance(panel, ResultsPanel):
                panel.job_ended(row)
        if row.kind == "finetune":
            self._sync_pickers()

    async def on_results_requested(self, message: ResultsRequested) -> None:
        results = await self._bring("results", ResultsPanel)
        results.focus_default()
        results.show(message.eval_name)

    def show_error(self, exc: LsnError) -> None:
        hint = app_hint(exc.hint)  # core hints name the CLI; the app says which tab and key do it
        text = exc.message + (f"\n{hint}" if hint else "")
        self.notify(text, title="error", severity="error", timeout=8, markup=False)

    def _show_status(self, loading: str | None = None) -> None:
        session = self.workbench.session.name if self.workbench else "no session"
        model = f"{self.model_label} · {loading}…" if loading else self.model_label
        lane = f"{self.lane}… (Esc cancels)" if self.lane else "idle"
        self.query_one("#status", Static).update(f" session {session} │ {model} │ {lane}")

    def _panels(self) -> list[Panel]:
        return list(self.screen_stack[0].query(Panel))

    # -- actions -------------------------------------------------------------------------------
    async def action_show_tab(self, tab: str) -> None:
        (await self._bring(tab, Panel)).focus_default()

    async def _bring(self, tab: str, panel: type[PanelT]) -> PanelT:
        """Bring `tab` to the front and return its panel (for the actions that act on one).

        Tabs other than Languages mount lazily after the first paint, so a key pressed at once
        can arrive before the panel exists, or exists but has not composed its fields; wait until
        it is mounted (a frame or two) instead of failing."""
        self.query_one(TabbedContent).active = tab
        pane = self.query_one(f"#{tab}")
        for _ in range(250):
            found = pane.query(panel)
            if found and found.first().is_mounted:
                return found.first()
            await asyncio.sleep(0.02)
        return pane.query_one(panel)  # still missing after 5 s: let NoMatches say so

    async def action_quit(self) -> None:
        """Quit once the lazily mounted tabs are (tabs.py: quitting mid-mount printed errors)."""
        self._cancel.set()  # a running model task stops at its next check; one that cannot is left behind
        tabs = self.screen_stack[0].query_one(Tabs)
        for _ in range(250):
            if tabs.later_panels_mounted():
                break
            await asyncio.sleep(0.02)
        self.exit()

    def action_help(self) -> None:
        from lsn_explorer.tui.screens.help import HelpScreen  # Markdown is slow to import; not needed to paint

        self.push_screen(HelpScreen())

    def action_cancel(self) -> None:
        if self.lane is not None:
            self._cancel.set()

    async def action_generate(self) -> None:
        (await self._bring("generate", GeneratePanel)).start()

    async def action_score(self) -> None:
        (await self._bring("score", ScorePanel)).score()

    async def action_compute_stats(self) -> None:
        (await self._bring("languages", LanguagesPanel)).compute()

    async def action_identify(self) -> None:
        (await self._bring("neurons", NeuronsPanel)).run_method()

    async def action_add_row(self) -> None:
        (await self._bring("interventions", InterventionsPanel)).add_row()

    async def action_rerun(self) -> None:
        (await self._bring("history", HistoryPanel)).rerun()

    def action_evaluate(self) -> None:
        from lsn_explorer.tui.screens.evaluate import EvaluateScreen

        if self.workbench is not None:
            self._launch_form(EvaluateScreen(self.workbench), "evaluation {name} (it keeps running if the app closes)")
        else:
            self.notify("open a session first", severity="warning", markup=False)

    def action_finetune(self) -> None:
        from lsn_explorer.tui.screens.finetune import FinetuneScreen

        if self.workbench is not None:
            self._launch_form(FinetuneScreen(self.workbench),
                              "fine-tune {name} (its loss curve is in the Jobs tab; it keeps running if the app closes)")
        else:
            self.notify("open a session first", severity="warning", markup=False)

    def _launch_form(self, form: Screen[tuple[str, int] | None], what: str) -> None:
        """Open a form that starts a background job; once started, say so and show it in the Jobs tab."""

        async def launched(started: tuple[str, int] | None) -> None:
            if started is None:
                return
            name, job_id = started
            self.notify(f"job {job_id} started: " + what.format(name=name), markup=False)
            self.post_message(SessionChanged())
            jobs = await self._bring("jobs", JobsPanel)
            jobs.focus_default()
            jobs.launched(job_id)

        self.push_screen(form, callback=launched)

    def action_open_session(self) -> None:
        self.push_screen(SessionScreen(self.root), callback=self.open_session)

    def action_open_model(self) -> None:
        def chosen(choice: tuple[str, bool] | None) -> None:
            if choice is not None:
                self.load_model(choice[0] or None, choice[1])

        self.push_screen(ModelScreen(), callback=chosen)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Compute statistics", "activation statistics for the ticked languages", self.action_compute_stats),
            ("Identify neurons", "run the chosen method (LAPE, Act Prob 90p, Type-1, Type-2, random)",
             self.action_identify),
            ("Add intervention row", "a new switch row in Interventions", self.action_add_row),
            ("Generate", "baseline and intervened continuations side by side", self.action_generate),
            ("Score sample", "the chosen task sample with and without the interventions", self.action_score),
            ("Evaluate", "a full evaluation over languages × rows as a background job (Ctrl+E)", self.action_evaluate),
            ("Fine-tune", "neuron-masked LoRA on a language's data as a background job (Ctrl+F)",
             self.action_finetune),
            ("Re-run history entry", "the selected History entry with the current interventions", self.action_rerun),
            ("Cancel", "stop the running model task", self.action_cancel),
            ("Open session", "switch to another session or start a new one", self.action_open_session),
            ("Open model", "load another model (Hugging Face id or folder, optional 4-bit)", self.action_open_model),
            ("Help", "what LAPE, Act Prob 90p, Type-1/Type-2 and the values mean", self.action_help),
        ]
        commands += [(f"Show {title}", f"the {title} tab ({key.upper()})", lambda tab=tab: self.action_show_tab(tab))
                     for tab, title, key, _panel in TABS]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)


def create_app(**kwargs: Any) -> LsnApp:
    """The app, configured like `lsn-explorer tui` (see LsnApp.__init__ for the arguments)."""
    return LsnApp(**kwargs)
