"""The bad-input catalogue (issue 16): one table of broken inputs over every CLI command, one test.

Each case builds what it needs in a fresh folder (a session `t` with a neuron set is always
there), runs `lsn-explorer ARGV` and asserts what every user-facing failure must look like: a
non-zero exit, exactly one `error: ` line and one `hint: ` line on stderr, no traceback, and
nothing written or lost — every file under the folder (sessions, inputs, outputs) has the same
bytes afterwards, no file appears, and each session's records, jobs and events are the ones it
had. Only SQLite's `-wal` / `-shm` side files are left out of the comparison: opening a database
creates them and closing it removes them, whatever the command did.

Most refusals come before a model loads; the few that need one use the demo model (or a tiny
checkpoint). A read-only sessions folder is made real by running the command as another user.
Full-disk writes are simulated at the end of the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from lsn_explorer import cli
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.session.store import Session, SessionError

NEURONS = {"zh": [[0, 3], [2, 17], [5, 700]], "hi": [[1, 4], [3, 9]]}  # on the demo model's 6 × 768 MLPs
XNLI_HEADER = "id\tpremise\thypothesis\tlabel\n"
SETPRIV = shutil.which("setpriv")


@dataclass
class Where:
    """The folders of one case: `root` holds everything the snapshot covers."""

    root: Path
    tiny: Path  # a saved tiny Llama checkpoint (outside `root`; never written)

    @property
    def sessions(self) -> Path:
        return self.root / "sessions"

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    def file(self, name: str, data: str | bytes) -> Path:
        path = self.inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        return path


Setup = Callable[[Where], None]


@dataclass
class Case:
    id: str
    argv: list[str]  # {root}, {sessions}, {in}, {tiny} are filled in
    setup: Setup | None = None
    as_other_user: bool = False  # run in a subprocess as uid 65534 (read-only folders for root too)
    marks: list[pytest.MarkDecorator] = field(default_factory=list)
    expect: str = ""  # a piece of the error line: the case fails for the reason it was written for


# -- setups: each builds one broken thing ----------------------------------------------------------
def text(name: str, data: str | bytes) -> Setup:
    return lambda w: w.file(name, data) and None


def files(entries: dict[str, str | bytes]) -> Setup:
    def setup(w: Where) -> None:
        for name, data in entries.items():
            w.file(name, data)
    return setup


def neuron_json(n_layers: int = 6, d_ff: int = 768, neurons: dict | None = None) -> str:
    """A neuron-set file as `identify export` writes it; `neurons` are written as given, unchecked."""
    data = NeuronSet("manual", {}, 6, 768, {"zh": [[0, 3]]}).to_json()
    return json.dumps(data | {"n_layers": n_layers, "d_ff": d_ff, "neurons": neurons or NEURONS})


def pickled_pth(w: Where) -> None:
    class Payload:  # unpickling it would leave a file behind: the snapshot would see it
        def __reduce__(self):
            return (Path.touch, (w.root / "pwned",))

    path = w.inputs / "neurons.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save([[torch.tensor([1, 2])] * 6, Payload()], path)


def tang_pth(n_layers: int, index: int) -> Setup:
    def setup(w: Where) -> None:
        w.inputs.mkdir(parents=True, exist_ok=True)
        torch.save([[torch.tensor([index]) for _ in range(n_layers)]], w.inputs / "neurons.pth")
    return setup


def checkpoint(edit: Callable[[Path], None]) -> Setup:
    """A copy of the tiny Llama checkpoint in in/model, then broken by `edit`."""
    def setup(w: Where) -> None:
        shutil.copytree(w.tiny, w.inputs / "model")
        edit(w.inputs / "model")
    return setup


def truncate_weights(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def break_config(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "llama", "hidden_size": ', encoding="utf-8")


def unsupported_architecture(folder: Path) -> None:
    from transformers import BertConfig

    (folder / "config.json").unlink()
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=40).save_pretrained(folder)


def session_db(edit: Callable[[Path], None], name: str = "t") -> Setup:
    def setup(w: Where) -> None:
        edit(w.sessions / name / "session.sqlite")
    return setup


def truncate_db(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def garble_db(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    data[page: len(data)] = bytes((i * 37) % 251 for i in range(len(data) - page))  # header kept
    path.write_bytes(bytes(data))


def newer_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999")
    db.commit()
    db.close()  # the last connection checkpoints the WAL into the file the snapshot hashes


def session_is_a_file(w: Where) -> None:
    (w.sessions / "f").write_text("not a session", encoding="utf-8")


def sessions_dir_is_a_file(w: Where) -> None:
    w.file("store", "a file where the sessions should be")


def read_only_sessions(w: Where) -> None:
    for path in [w.sessions, *w.sessions.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def a_job(state: str) -> Setup:
    def setup(w: Where) -> None:
        with Session.open("t", w.sessions) as session:
            job = session.add_job("eval", "e", {"kind": "eval"})
            session.update_job(job.id, state=state)
    return setup


def out_folder_is_a_file(w: Where) -> None:
    w.file("out", "a file")


# -- the catalogue -----------------------------------------------------------------------------------
S = ["--sessions-dir", "{sessions}", "--session", "t"]
GEN = ["generate", "--prompt", "hi", *S, "--intervene"]

CASES = [
    # model: sources that are not a loadable checkpoint
    Case("model-missing-path", ["model", "info", "--model", "{in}/no-such-model"], expect="does not exist"),
    Case("model-hub-id-offline", ["model", "info", "--model", "no-such-org/no-such-model-xyz"], expect="while offline"),
    Case("model-unsupported-architecture", ["model", "info", "--model", "{in}/model"],
         checkpoint(unsupported_architecture), expect="model type 'bert' is not supported"),
    Case("model-broken-config", ["model", "info", "--model", "{in}/model"], checkpoint(break_config),
         expect="could not read the config"),
    Case("model-truncated-safetensors", ["model", "info", "--model", "{in}/model"], checkpoint(truncate_weights),
         expect="could not load"),
    Case("model-unknown-dtype", ["model", "info", "--model", "{tiny}", "--dtype", "float8"], expect="unknown dtype 'float8'"),
    Case("demo-run-missing-model", ["demo", "run", "--model", "{in}/nothing"], expect="does not exist"),
    Case("demo-eval-unknown-language", ["demo", "eval", "--langs", "xx"], expect="unknown language code 'xx'"),
    Case("demo-eval-empty-corpus", ["demo", "eval", "--langs", "en", "--corpus", "{in}/corpus"],
         text("corpus/en.txt", ""), expect="is empty"),
    # stats: languages and corpus files, checked before the model loads
    Case("stats-no-langs", ["stats", *S], expect="no languages given"),
    Case("stats-unknown-language", ["stats", *S, "--langs", "en,xx"], expect="unknown language code 'xx'"),
    Case("stats-language-without-corpus", ["stats", *S, "--langs", "en", "--corpus", "{in}/corpus"],
         text("corpus/fr.txt", "Bonjour.\n"), expect="no corpus text for en in"),
    Case("stats-empty-corpus", ["stats", *S, "--langs", "en", "--corpus", "{in}/en.txt"], text("en.txt", "\n\n  \n"),
         expect="is empty"),
    Case("stats-non-utf8-corpus", ["stats", *S, "--langs", "en", "--corpus", "{in}/en.txt"],
         text("en.txt", "caf\xe9 au lait\n".encode("latin-1")), expect="is not UTF-8 (byte 3"),
    Case("stats-binary-corpus", ["stats", *S, "--langs", "en", "--corpus", "{in}/en.txt"],
         text("en.txt", bytes(range(256)) * 64), expect="is not UTF-8 (byte 128"),
    Case("stats-huge-line-corpus", ["stats", *S, "--langs", "en", "--corpus", "{in}/en.txt"],
         text("en.txt", b"word " * 2_000_000 + b"\xff\n"),
         expect="is not UTF-8 (byte 10000000)"),  # one 10 MB line, then a stray byte
    Case("stats-bad-shard", ["stats", *S, "--langs", "en", "--shard", "3/2"], expect="bad --shard '3/2'"),
    Case("stats-zero-bins", ["stats", *S, "--langs", "en", "--bins", "0"],
         expect="bins 0 is out of range: it must be a whole nu"),
    Case("stats-merge-without-shards", ["stats", "merge", *S], expect="the session has no shard records to merge"),
    Case("stats-detach-missing-model", ["stats", *S, "--langs", "en", "--detach", "--model", "{in}/nothing"],
         expect="does not exist"),
    # identify: methods, parameters, neuron files
    Case("identify-unknown-method", ["identify", *S, "--method", "lapee"], expect="unknown identification method 'lapee'"),
    Case("identify-top-rate-out-of-range", ["identify", *S, "--method", "lape", "--top-rate", "2"],
         expect="lape: top_rate 2.0 is out of range"),
    Case("identify-flag-of-another-method", ["identify", *S, "--method", "lape", "--top-n", "5"],
         expect="--top-n is not a parameter of lape"),
    Case("identify-lape-without-stats", ["identify", *S, "--method", "lape"], expect="session 't' has no activation statistics"),
    Case("identify-random-without-reference", ["identify", *S, "--method", "random"],
         expect="the random baseline needs a reference set"),
    Case("identify-type1-corpus-without-pair", ["identify", *S, "--method", "type1", "--langs", "ja,zh",
                                                "--corpus", "{in}/corpus"], text("corpus/en.txt", "Hello.\n"),
         expect="no corpus text for ja in"),
    Case("identify-show-unknown-set", ["identify", "show", *S, "--name", "nope"], expect="session 't' has no neuron set 'nope'"),
    Case("identify-compare-nothing", ["identify", "compare", *S], expect="nothing to compare"),
    Case("identify-export-under-a-file", ["identify", "export", *S, "--name", "manual",
                                          "--out", "{in}/a-file/x.json"], text("a-file", ""), expect="folder of the output file"),
    Case("identify-import-malformed-json", ["identify", "import", *S, "--file", "{in}/n.json"],
         text("n.json", '{"method": "manual", "neurons": {"zh": [[0, 1]]'), expect="invalid JSON (Expecting ',' delimiter"),
    Case("identify-import-pickled-pth", ["identify", "import", *S, "--file", "{in}/neurons.pth", "--langs", "zh"],
         pickled_pth, expect="is not a readable .pth neuron file"),
    Case("identify-import-garbage-pth", ["identify", "import", *S, "--file", "{in}/neurons.pth", "--langs", "zh"],
         text("neurons.pth", b"PK\x03\x04 this is not a checkpoint"), expect="is not a readable .pth neuron file"),
    Case("identify-import-neuron-beyond-dff", ["identify", "import", *S, "--file", "{in}/n.json"],
         text("n.json", neuron_json(neurons={"zh": [[0, 768]]})), expect="neuron index 768 is beyond d_ff = 768 (zh"),
    Case("identify-import-layer-beyond-depth", ["identify", "import", *S, "--file", "{in}/n.json"],
         text("n.json", neuron_json(neurons={"zh": [[6, 3]]})), expect="layer 6 is beyond the model's 6 layers (zh"),
    Case("identify-import-wrong-model-set", ["identify", "import", *S, "--file", "{in}/n.json"],
         text("n.json", neuron_json(32, 14336, {"zh": [[31, 14000]]})), expect="was made for 32 layers × 14336 neurons"),
    Case("identify-import-pth-layer-count", ["identify", "import", *S, "--file", "{in}/neurons.pth", "--langs", "zh"],
         tang_pth(32, 1), expect="zh has 32 layers, the model has 6"),
    Case("identify-import-pth-index-beyond-dff", ["identify", "import", *S, "--file", "{in}/neurons.pth",
                                                  "--langs", "zh"], tang_pth(6, 5000),
         expect="neuron index 5000 is beyond d_ff = 768 (zh"),
    # intervention specs: every part of SOURCE[:LANG]=VALUE[@POSITIONS][/SITE][/faithful]
    Case("spec-no-value", [*GEN, "manual:zh"], expect="expected SOURCE[:LANG]=VALUE"),
    Case("spec-empty-source", [*GEN, "=zero"], expect="expected SOURCE[:LANG]=VALUE"),
    Case("spec-bad-source", [*GEN, "man ual:zh=zero"], expect="source 'man ual' is not a neuron-set name"),
    Case("spec-empty-language", [*GEN, "manual:=zero"], expect="empty language after ':'"),
    Case("spec-unknown-language", [*GEN, "manual:xx=zero"], expect="unknown language code 'xx'"),
    Case("spec-bad-value", [*GEN, "manual:zh=p91"], expect="value 'p91'"),
    Case("spec-bad-positions", [*GEN, "manual:zh=zero@middle"], expect="positions 'middle'"),
    Case("spec-bad-site", [*GEN, "manual:zh=zero/q"], expect="modifier 'q'"),
    Case("spec-faithful-with-site-a", [*GEN, "manual:zh=p90/a/faithful"], expect="drop the /a"),
    Case("spec-stat-value-without-language", [*GEN, "manual=mean"], expect="add :LANG after the source"),
    Case("spec-unknown-set", [*GEN, "nope:zh=zero"], expect="session 't' has no neuron set 'nope'"),
    Case("spec-language-not-in-set", [*GEN, "manual:en=zero"], expect="neuron set 'manual' has no neurons for en"),
    Case("spec-layer-beyond-depth", [*GEN, "9.3=zero"], expect="layer 9 is beyond the model's 6 layers"),
    Case("spec-neuron-beyond-dff", [*GEN, "3.99999=zero"], expect="neuron index 99999 is beyond d_ff = 768"),
    Case("generate-compare-without-intervention", ["generate", "--prompt", "hi", *S, "--compare"],
         expect="--compare needs an intervention to compare ag"),
    Case("generate-unknown-adapter", ["generate", "--prompt", "hi", *S, "--adapter", "tuned"],
         expect="session 't' has no adapter 'tuned'"),
    # ppl
    Case("ppl-no-langs", ["ppl", *S], expect="no languages given"),
    Case("ppl-unknown-language", ["ppl", *S, "--langs", "zz"], expect="unknown language code 'zz'"),
    Case("ppl-empty-corpus", ["ppl", *S, "--langs", "en", "--corpus", "{in}/corpus"], text("corpus/en.txt", ""),
         expect="is empty"),
    Case("ppl-matrix-unknown-set", ["ppl", *S, "--langs", "zh,hi", "--matrix", "--set", "nope"],
         expect="session 't' has no neuron set 'nope'"),
    Case("ppl-matrix-bad-value", ["ppl", *S, "--langs", "zh,hi", "--matrix", "--set", "manual", "--value", "p91"],
         expect="value 'p91'"),
    # score: the benchmark files and the text file
    Case("score-nothing", ["score", *S], expect="nothing to score"),
    Case("score-missing-file", ["score", *S, "--file", "{in}/none.txt"], expect="does not exist"),
    Case("score-empty-file", ["score", *S, "--file", "{in}/t.txt"], text("t.txt", " \n"), expect="is empty"),
    Case("score-non-utf8-file", ["score", *S, "--file", "{in}/t.txt"], text("t.txt", b"\xff\xfe\x00bad"),
         expect="is not UTF-8 text"),
    Case("score-unknown-language", ["score", *S, "--task", "xnli", "--lang", "xx"], expect="unknown language code 'xx'"),
    Case("score-language-of-another-dataset", ["score", *S, "--task", "xnli", "--lang", "ja"],
         expect="xnli has no data for Japanese (ja"),
    Case("score-sample-out-of-range", ["score", *S, "--task", "xnli", "--lang", "zh", "--sample", "99999"],
         expect="xnli zh has 72 samples; there is no sample 99"),
    Case("score-malformed-xnli-tsv", ["score", *S, "--task", "xnli", "--lang", "zh", "--data-dir", "{in}/data"],
         text("data/xnli/xnli_test_zh.tsv", XNLI_HEADER + "0\tonly a premise\n"),
         expect="expected 4 tab-separated fields, found 2"),
    Case("score-malformed-xquad-json", ["score", *S, "--task", "xquad", "--lang", "zh", "--data-dir", "{in}/data"],
         text("data/xquad/xquad.zh.json", '{"version": "1.1", "data": [{"paragraphs": [{"qas": 3}]}]}'),
         expect="missing SQuAD field 'context'"),
    Case("score-malformed-mkqa-jsonl", ["score", *S, "--task", "mkqa", "--lang", "zh", "--data-dir", "{in}/data"],
         text("data/mkqa/mkqa.jsonl", '{"query": "q", "queries": {"zh_cn": "问"\n'), expect="invalid JSON"),
    # eval (its 22 argument errors are in tests/unit/test_eval_cli.py): the stores and files
    Case("eval-language-of-another-dataset", ["eval", "run", *S, "--task", "mkqa", "--langs", "ta"],
         expect="mkqa has no data for Tamil (ta"),
    Case("eval-show-without-evaluations", ["eval", "show", *S], expect="session 't' has no evaluations"),
    Case("eval-binary-xnli-file", ["eval", "run", *S, "--task", "xnli", "--langs", "zh", "--data-dir", "{in}/data"],
         text("data/xnli/xnli_test_zh.tsv", bytes(range(256))), expect="is not UTF-8 text (byte 128"),
    # finetune: the spec, the neurons, the adapters
    Case("finetune-bad-neurons", ["finetune", *S, "--train-lang", "zh", "--neurons", "manual"], expect="bad --neurons 'manual'"),
    Case("finetune-unknown-set", ["finetune", *S, "--train-lang", "zh", "--neurons", "nope:zh"],
         expect="session 't' has no neuron set 'nope'"),
    Case("finetune-set-without-language", ["finetune", *S, "--train-lang", "zh", "--neurons", "manual:en"],
         expect="neuron set 'manual' has no neurons for en"),
    Case("finetune-unknown-language", ["finetune", *S, "--train-lang", "xx", "--neurons", "manual:zh"],
         expect="unknown language code 'xx'"),
    Case("finetune-zero-rank", ["finetune", *S, "--train-lang", "zh", "--neurons", "manual:zh", "--rank", "0"],
         expect="--rank must be a whole number ≥ 1 (got 0"),
    Case("finetune-train-frac-above-one", ["finetune", *S, "--train-lang", "zh", "--neurons", "manual:zh",
                                           "--train-frac", "2"], expect="--train-frac must be in (0, 1] (got 2.0"),
    Case("finetune-unknown-task", ["finetune", *S, "--task", "mkqa", "--train-lang", "zh", "--neurons", "manual:zh"],
         expect="unknown fine-tuning task 'mkqa'"),
    Case("finetune-bad-module", ["finetune", *S, "--train-lang", "zh", "--neurons", "manual:zh", "--modules", "ffn"],
         expect="--modules: ffn is not one of gate, up, down"),
    Case("finetune-empty-train-data", ["finetune", *S, "--train-lang", "zh", "--neurons", "manual:zh",
                                       "--train-data", "{in}/zh.txt"], text("zh.txt", ""), expect="is empty"),
    Case("finetune-export-unknown-adapter", ["finetune", "export", *S, "--name", "tuned", "--out", "{in}/out"],
         expect="session 't' has no adapter 'tuned'"),
    Case("finetune-export-without-name", ["finetune", "export", *S], expect="`finetune export` needs --name and --out"),
    Case("finetune-detach-missing-model", ["finetune", *S, "--train-lang", "zh", "--neurons", "manual:zh",
                                           "--detach", "--model", "{in}/nothing"], expect="does not exist"),
    # analyze (15 more in tests/unit/test_analyze_cli.py)
    Case("analyze-unknown-language", ["analyze", "centroids", *S, "--langs", "en,xx"], expect="unknown language code 'xx'"),
    Case("analyze-layer-beyond-depth", ["analyze", "centroids", *S, "--langs", "en,zh", "--layer", "99"],
         expect="layer 99 is beyond this model's depths 0–6"),
    Case("analyze-zero-batch", ["analyze", "centroids", *S, "--langs", "en,zh", "--batch-size", "0"],
         expect="--batch-size 0 is not a batch"),
    Case("analyze-png-under-a-file", ["analyze", "centroids", *S, "--langs", "en,zh",
                                      "--png", "{in}/a-file/x.png"], text("a-file", ""), expect="folder of the PNG file"),
    # session: the store and the database itself
    Case("session-show-unknown", ["session", "show", "nope", "--sessions-dir", "{sessions}"],
         expect="no session named 'nope' in"),
    Case("session-show-no-name", ["session", "show", "--sessions-dir", "{sessions}"], expect="no session name"),
    Case("session-folder-is-a-file", ["session", "show", "f", "--sessions-dir", "{sessions}"], session_is_a_file,
         expect="session 'f' is a file"),
    Case("sessions-dir-is-a-file", ["stats", "--sessions-dir", "{in}/store", "--session", "t", "--langs", "en"],
         sessions_dir_is_a_file, expect="is a file, not a folder"),
    Case("session-truncated-sqlite", ["session", "show", "t", "--sessions-dir", "{sessions}"], session_db(truncate_db),
         expect="is not a readable session database"),
    Case("session-garbled-sqlite", ["identify", "show", *S, "--name", "manual"], session_db(garble_db),
         expect="a session database is damaged"),
    Case("session-newer-schema", ["generate", "--prompt", "hi", *S], session_db(newer_schema),
         expect="was written by a newer lsn-explorer"),
    Case("session-export-onto-a-file", ["session", "export", "t", "--sessions-dir", "{sessions}", "--out", "{in}/out"],
         out_folder_is_a_file, expect="is a file, not a folder"),
    Case("session-read-only-existing", ["session", "show", "t", "--sessions-dir", "{sessions}"], read_only_sessions,
         as_other_user=True, expect="session 't' is read-only"),
    Case("session-read-only-new", ["eval", "run", "--sessions-dir", "{sessions}", "--session", "new",
                                   "--task", "xnli", "--langs", "zh"], read_only_sessions, as_other_user=True,
         expect="cannot create the session folder"),
    # jobs
    Case("jobs-show-unknown", ["jobs", "show", "99", *S], expect="session 't' has no job 99"),
    Case("jobs-cancel-without-id", ["jobs", "cancel", *S], expect="`jobs cancel` needs a job id"),
    Case("jobs-resume-unknown", ["jobs", "resume", "99", *S], expect="session 't' has no job 99"),
    Case("jobs-resume-finished", ["jobs", "resume", "1", *S], a_job("finished"),
         expect="job 1 has already finished; there is nothing"),
    Case("jobs-log-unknown", ["jobs", "log", "99", *S], expect="session 't' has no job 99"),
    Case("jobs-list-unknown-session", ["jobs", "list", "--sessions-dir", "{sessions}", "--session", "nope"],
         expect="no session named 'nope' in"),
    # the app's own flags, refused before it starts
    Case("tui-bad-session-name", ["tui", "--sessions-dir", "{sessions}", "--session", "../up"],
         expect="invalid session name '../up'"),
    Case("tui-sessions-dir-is-a-file", ["tui", "--sessions-dir", "{in}/store", "--session", "t"],
         sessions_dir_is_a_file, expect="is a file, not a folder"),
    # argparse's own refusals, in the same two lines (they printed a usage block and no hint)
    Case("args-unknown-flag", ["stats", "--bogus", *S], expect="unrecognized arguments: --bogus"),
    Case("args-bad-value", ["stats", "--tokens", "abc", *S], expect="argument --tokens: 'abc'"),
    Case("args-missing-required", ["generate", *S], expect="the following arguments are required: --prompt"),
    Case("args-unknown-command", ["nosuch"], expect="invalid choice: 'nosuch'"),
]


# -- the one test --------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, object]:
    """Every file's sha256 and every folder under `root`, and each session's records per kind, jobs
    and events (SQLite's -wal / -shm side files left out)."""
    state: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.name.endswith(("-wal", "-shm")):
            continue
        state[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
    sessions = root / "sessions"
    for db in sorted(sessions.glob("*/session.sqlite")) if sessions.is_dir() else []:
        try:
            with Session.open(db.parent.name, sessions, create=False) as session:
                state[f"records of {db.parent.name}"] = (Counter(r.kind for r in session.records()),
                                                         [(j.id, j.state) for j in session.jobs()],
                                                         len(session.events()))
        except SessionError as exc:
            state[f"records of {db.parent.name}"] = f"unreadable: {exc.message}"
        except sqlite3.DatabaseError as exc:  # damaged past the header: opens, then fails to read
            state[f"records of {db.parent.name}"] = f"damaged: {exc}"
    return state


def fill(argv: list[str], where: Where) -> list[str]:
    names = {"root": where.root, "sessions": where.sessions, "in": where.inputs, "tiny": where.tiny}
    return [a.format(**names) for a in argv]


def run_as_other_user(argv: list[str]) -> tuple[int, str]:
    command = [sys.executable, "-m", "lsn_explorer.cli", *argv]
    if os.geteuid() == 0:  # root writes through any mode bits: drop to nobody for the real refusal
        command = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env=os.environ | {"PYTHONPATH": str(Path(cli.__file__).parents[2])})
    return done.returncode, done.stderr


def _app_must_not_start(**kwargs):
    raise AssertionError("the app started instead of refusing its arguments")


@pytest.fixture()
def where(request, tmp_path, tiny_checkpoints, monkeypatch):
    case: Case = request.param
    if case.as_other_user:
        if os.geteuid() == 0 and SETPRIV is None:
            pytest.skip("needs setpriv to drop root's rights")
        root = Path(tempfile.mkdtemp(prefix="lsn-ro-"))  # 0700 pytest folders are closed to nobody
        root.chmod(0o755)
    else:
        root = tmp_path / "case"
    where = Where(root, tiny_checkpoints["llama"])
    with Session.open("t", where.sessions) as session:
        session.add("neuron_set", "manual", {"set": json.loads(neuron_json())}, {})
    if case.setup:
        case.setup(where)
    work = root / "work"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)  # a command that falls back to ./sessions would write here, not in the repo
    monkeypatch.delenv("LSN_SESSIONS_DIR", raising=False)
    yield where
    if case.as_other_user:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755)
        shutil.rmtree(root)


@pytest.mark.parametrize("where", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES], indirect=True)
def test_bad_input_is_one_error_line_one_hint_and_nothing_written(where, request, capsys, monkeypatch):
    case: Case = request.node.callspec.params["where"]
    argv = fill(case.argv, where)
    if case.argv[0] == "tui":  # a refusal that failed would open the app and wait for keys forever
        monkeypatch.setattr("lsn_explorer.tui.app.create_app", _app_must_not_start)
    before = snapshot(where.root)
    if case.as_other_user:
        code, err = run_as_other_user(argv)
    else:
        code = cli.main(argv)
        err = capsys.readouterr().err
    lines = err.splitlines()
    assert code != 0, err
    assert "Traceback" not in err, err
    assert sum(line.startswith("error: ") for line in lines) == 1, err
    assert case.expect in next(line for line in lines if line.startswith("error: ")), err
    assert sum(line.startswith("hint: ") for line in lines) == 1, err
    assert snapshot(where.root) == before


@pytest.mark.parametrize("argv, command", [
    (["model", "info", "--bogus"], "lsn-explorer model info"),  # a sub-command's sub-command
    (["eval", "run", "--bogus"], "lsn-explorer eval"),  # `run` is eval's positional, not a parser
    (["--bogus"], "lsn-explorer"),
])
def test_an_unknown_flag_hints_at_the_help_of_the_command_that_was_given(argv, command, capsys):
    assert cli.main(argv) == 2
    hint = capsys.readouterr().err.splitlines()[-1]
    assert hint == f"hint: `{command} --help` lists its arguments"


def test_the_catalogue_covers_every_command():
    from lsn_explorer.cli import COMMANDS

    covered = {c.argv[0] for c in CASES}
    assert covered >= {m.__name__.rsplit(".", 1)[1].replace("evaluate", "eval") for m in COMMANDS}
    assert len(CASES) >= 50 and len({c.id for c in CASES}) == len(CASES)


# -- a full disk while an artifact is written ------------------------------------------------------------
def disk_full(*args):
    raise OSError(errno.ENOSPC, "No space left on device")


def assert_one_error(code: int, err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert code == 2 and "Traceback" not in err, err
    assert sum(line.startswith("error: ") for line in lines) == 1, err
    assert sum(line.startswith("hint: ") for line in lines) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_a_full_disk_while_stats_writes_its_artifact_stores_nothing(tmp_path, capsys, monkeypatch):
    with Session.open("t", tmp_path / "sessions"):
        pass
    before = snapshot(tmp_path)
    # The data went out to the temp file; flushing it to the disk found no room (where ENOSPC shows).
    monkeypatch.setattr(os, "fsync", disk_full)
    code = cli.main(["stats", "--sessions-dir", str(tmp_path / "sessions"), "--session", "t", "--langs", "en",
                     "--tokens", "256"])
    assert_one_error(code, capsys.readouterr().err, "could not write artifact", "No space left on device",
                     "free disk space")
    assert snapshot(tmp_path) == before  # no record, no artifact, no .tmp- file left in artifacts/


def test_a_full_disk_while_the_adapter_is_saved_records_nothing(tmp_path, capsys, monkeypatch, tiny_checkpoints):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "en.txt").write_text("the cat sleeps in the sun.\nwe walk to the river.\n" * 8, encoding="utf-8")
    with Session.open("t", tmp_path / "sessions") as session:
        neuron_set = NeuronSet("manual", {}, 2, 48, {"en": [[1, 3], [1, 7]]})  # the tiny Llama's 2 × 48 MLPs
        session.add("neuron_set", "lape", {"set": neuron_set.to_json()}, {})
    before = snapshot(tmp_path)
    monkeypatch.setattr(os, "fsync", disk_full)  # the first fsync of the run is the adapter folder's
    code = cli.main(["finetune", "--model", str(tiny_checkpoints["llama"]), "--sessions-dir", str(tmp_path / "sessions"),
                     "--session", "t", "--train-data", str(corpus), "--train-lang", "en", "--neurons", "lape:en",
                     "--max-steps", "2", "--checkpoint-every", "100", "--name", "full"])
    assert_one_error(code, capsys.readouterr().err, "could not write adapter 'full'", "nothing was recorded")
    after = snapshot(tmp_path)
    adapters = tmp_path / "sessions" / "t" / "artifacts" / "adapters"
    assert list(adapters.iterdir()) == []  # no staging or temporary folder, no half adapter
    # What may appear: the empty folders a fine-tune keeps its checkpoints and adapters in.
    new = {k: v for k, v in after.items() if k not in before}
    assert all(v == "folder" for v in new.values()), new
    assert {k: v for k, v in after.items() if k in before} == before
