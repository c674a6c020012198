"""Interventions: switch rows the researcher flips while working; they apply to the next run.

Each row edits one `Intervention` (source and language, value, site, positions) through its
spec; the rows are saved in the session on every change. What a spec names (a stored set and its
language, the statistics a percentile needs, a neuron in range) is checked as it is typed: a typed
spec that cannot apply is refused, an edited row that cannot apply is switched off, with a
notification either way.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static, Switch

from lsn_explorer.core.data.languages import language_table
from lsn_explorer.core.interventions.spec import Intervention, parse_intervention
from lsn_explorer.core.vocab import POSITIONS, VALUES, WRITE_SITES
from lsn_explorer.errors import LsnError
from lsn_explorer.tui.panels.base import Panel
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.state import SwitchRow

LIST_SOURCE = "list"


class InterventionRow(Horizontal):
    """One switch row. Holds the last spec that parsed; `spec_from_widgets` builds a new one."""

    def __init__(self, row: SwitchRow, set_names: list[str]) -> None:
        super().__init__(classes="iv-row")
        self.row = row
        self.set_names = set_names
        self.ready = False

    def compose(self) -> ComposeResult:
        iv = parse_intervention(self.row.spec)
        sources = list(dict.fromkeys([*self.set_names, *([iv.source] if iv.source != LIST_SOURCE else [])]))
        yield Switch(self.row.enabled, animate=False, classes="iv-on")
        yield Select([(s, s) for s in sources] + [("typed list", LIST_SOURCE)], value=iv.source,
                     allow_blank=False, compact=True, classes="iv-source")
        yield Select([(code, code) for code in language_table()], value=iv.lang or Select.NULL,
                     prompt="lang", compact=True, classes="iv-lang")
        yield Select([(v, v) for v in VALUES], value=iv.value, allow_blank=False, compact=True, classes="iv-value")
        yield Input(f"{iv.amount:g}", placeholder="amount", compact=True, classes="iv-amount")
        yield Select([(f"site {s}", s) for s in WRITE_SITES], value=iv.site, allow_blank=False, compact=True,
                     classes="iv-site")
        yield Select([(f"@{p}", p) for p in POSITIONS], value=iv.positions, allow_blank=False, compact=True,
                     classes="iv-positions")
        yield Input(",".join(f"{l}.{i}" for l, i in iv.neurons), placeholder="3.17,5.200", compact=True,
                    classes="iv-neurons")
        yield Button("✕", classes="iv-delete", compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(setattr, self, "ready", True)

    def spec_from_widgets(self) -> str:
        source = self.query_one(".iv-source", Select).value
        lang = self.query_one(".iv-lang", Select).value
        value = str(self.query_one(".iv-value", Select).value)
        amount = self.query_one(".iv-amount", Input).value.strip() or "0"
        if value == "const":
            value = amount
        elif value == "scale":
            value = "x" + amount
        who = self.query_one(".iv-neurons", Input).value.strip() if source == LIST_SOURCE else str(source)
        spec = f"{who}{':' + str(lang) if isinstance(lang, str) else ''}={value}"
        positions = self.query_one(".iv-positions", Select).value
        site = self.query_one(".iv-site", Select).value
        spec += f"@{positions}" if positions != "all" else ""
        spec += f"/{site}" if site != "s" else ""
        return spec + ("/faithful" if parse_intervention(self.row.spec).mode == "faithful" else "")

    @property
    def enabled(self) -> bool:
        return self.query_one(".iv-on", Switch).value

    def switch_off(self) -> None:
        with self.prevent(Switch.Changed):
            self.query_one(".iv-on", Switch).value = False
        self.row = SwitchRow(self.row.spec, False)


class InterventionsPanel(Panel):
    BINDINGS = [Binding("ctrl+n", "add_row", "Add row"), Binding("ctrl+l", "delete_row", "Delete row")]
    DEFAULT_FOCUS = "#iv-spec"

    def compose(self) -> ComposeResult:
        yield Label("Interventions: switched-on rows apply to the next generation or score", classes="title")
        yield Static("on │ neurons (set or typed list) │ language │ value │ amount (constant / factor) │ site │ "
                     "positions │ typed neurons", classes="note")
        yield VerticalScroll(id="iv-rows")
        with Horizontal(classes="form"):
            yield Button("+ Add row (Ctrl+N)", id="iv-add", compact=True)
            yield Label("or type a spec", classes="field")
            yield Input(placeholder="e.g. lape:zh=zero, type1:ja=zero@prompt, 3.17,5.200=x0", id="iv-spec",
                        compact=True)
        yield Static("", id="iv-active")

    # -- rows ----------------------------------------------------------------------------------
    def restore(self, workbench: Workbench) -> None:
        rows = self.query_one("#iv-rows", VerticalScroll)
        rows.remove_children()
        names = workbench.neuron_set_names()
        rows.mount_all([InterventionRow(row, names) for row in workbench.state.rows])
        self.call_after_refresh(self._summarise)

    def model_ready(self) -> None:
        self._summarise()

    def records_changed(self) -> None:
        names = self.workbench.neuron_set_names()
        for row in self.query(InterventionRow):
            select = row.query_one(".iv-source", Select)
            current = select.value
            options = list(dict.fromkeys([*names, *([current] if current != LIST_SOURCE else [])]))
            with row.prevent(Select.Changed):
                select.set_options([(s, s) for s in options] + [("typed list", LIST_SOURCE)])
                select.value = current
        self._summarise()

    def add_row(self, spec: str | None = None) -> bool:
        """Add a switched-off row for `spec` (None: the newest set, zeroed); False when refused."""
        names = self.workbench.neuron_set_names()
        spec = spec if spec is not None else self._default_spec(names)
        try:
            self.workbench.check_spec(spec)
        except LsnError as exc:
            self.host.show_error(exc)
            return False
        row = InterventionRow(SwitchRow(spec, False), names)
        self.query_one("#iv-rows", VerticalScroll).mount(row)
        self._save()
        return True

    def _default_spec(self, names: list[str]) -> str:
        """The newest set for the last ticked language it has neurons for, else one typed neuron."""
        if names:
            for lang in reversed(self.workbench.state.languages):
                spec = f"{names[0]}:{lang}=zero"
                try:
                    self.workbench.check_spec(spec)
                except LsnError:
                    continue
                return spec
        return "0.0=zero"

    def action_add_row(self) -> None:
        self.add_row()

    def action_delete_row(self) -> None:
        focused = self.app.focused
        for row in self.query(InterventionRow):
            if focused is not None and (focused is row or row in focused.ancestors):
                row.remove()
                self.call_after_refresh(self._save)
                return
        self.notify("focus a row first (Tab), then Ctrl+L", severity="warning", markup=False)

    # -- edits ---------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "iv-add":
            self.add_row()
        elif event.button.has_class("iv-delete"):
            for row in event.button.ancestors:
                if isinstance(row, InterventionRow):
                    row.remove()
                    self.call_after_refresh(self._save)
                    break

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "iv-spec":
            if event.value.strip() and self.add_row(event.value.strip()):
                event.input.value = ""  # a refused spec stays for fixing
            return
        self._edited(event.input)

    def on_select_changed(self, event: Select.Changed) -> None:
        self._edited(event.select)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self._edited(event.switch)

    def _edited(self, widget: object) -> None:
        row = next((a for a in getattr(widget, "ancestors", []) if isinstance(a, InterventionRow)), None)
        if row is None or not row.ready:
            return
        try:
            spec = row.spec_from_widgets()
            intervention = parse_intervention(spec)
        except LsnError as exc:
            self.host.show_error(exc)
            return
        row.row = SwitchRow(spec, row.enabled)
        if not self._applies(intervention, row.enabled):
            row.switch_off()
        self._save()

    def _applies(self, intervention: Intervention, enabled: bool) -> bool:
        """Check against the session and model now, so a bad row is known as it is edited, not mid-run."""
        try:
            self.workbench.check_spec(intervention.spec)
        except LsnError as exc:
            self.host.show_error(LsnError(exc.message + (" — row switched off" if enabled else ""), exc.hint))
            return False
        return True

    def _save(self) -> None:
        rows = [row.row for row in self.query(InterventionRow) if row.is_attached]
        self.workbench.set_rows(rows)
        self._summarise()

    def _summarise(self) -> None:
        active = self.workbench.active() if self.host.workbench is not None else []
        if not active:
            text = "No row switched on: generations and scores run the plain model only."
        else:
            text = "On: " + " + ".join(iv.label for iv in active)
            if self.workbench.handle is not None:
                try:
                    text += f" ({self.workbench.plan().neuron_count():,} neurons written per pass)"
                except LsnError as exc:
                    text += f" — cannot apply: {exc.message}"
        self.query_one("#iv-active", Static).update(text)
