"""`--remote`: NDIF execution and its dry run.

There is no network here, so NDIF itself is never reached. What is checked: the dry run
(`--remote local`, every trace serialized as for NDIF and deserialized without this package)
gives exactly the numbers of a plain run; every refused combination is a one-line error; and the
NDIF path up to the network (no key, nothing listening, a stand-in NDIF on localhost that
answers /status but no websocket) fails with one line, no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import test_cli_interventions
import torch
from test_cli_engine import SENTENCES, assert_error, run
from tiny import tiny_model, tiny_tokenizer

from lsn_explorer.core.model import backend
from lsn_explorer.core.stats.runs import load_stats
from lsn_explorer.errors import RemoteJobError
from lsn_explorer.session.store import Session

REPO = "acme/tiny-llama"  # a hub id that exists only in the test's own hub cache

sessions = test_cli_interventions.sessions  # the fixture: a session with a hand-made neuron set of the demo model


@pytest.fixture()
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for lang in ("en", "fr"):
        (folder / f"{lang}.txt").write_text("\n".join(SENTENCES[lang]) + "\n", encoding="utf-8")
    return folder


def both(capsys, *argv):
    """The JSON output of a command run plainly and with `--remote local`."""
    outputs = []
    for extra in ([], ["--remote", "local"]):
        code, out, err = run(capsys, *argv, *extra, "--json")
        assert code == 0, err
        outputs.append(json.loads(out))
    return outputs


# --- the dry run equals a plain run -------------------------------------------------------------

def test_stats_dry_run_stores_the_same_statistics(capsys, tiny_checkpoints, tmp_path, corpus):
    common = ["stats", "--model", tiny_checkpoints["llama"], "--sessions-dir", tmp_path / "s", "--langs", "en,fr",
              "--corpus", corpus, "--window", "16"]
    for session, extra in (("plain", []), ("remote", ["--remote", "local"])):
        code, _, err = run(capsys, *common, "--session", session, *extra)
        assert code == 0, err
    with Session.open("plain", tmp_path / "s", create=False) as a, Session.open("remote", tmp_path / "s", create=False) as b:
        for lang in ("en", "fr"):
            plain, remote = load_stats(a, lang), load_stats(b, lang)
            assert plain.tokens == remote.tokens > 0 and plain.values.keys() == remote.values.keys()
            for name, values in plain.values.items():
                assert torch.equal(values, remote.values[name]), (lang, name)


def test_generate_dry_run_gives_the_same_tokens(capsys, sessions):
    # @all also writes at every decoding step (nnsight's step loop); greedy and sampled
    for extra in ([], ["--temperature", "0.8", "--seed", "3"]):
        plain, remote = both(capsys, "generate", *sessions, "--prompt", "今天我们", "--compare", "--max-new-tokens", "6",
                             "--intervene", "handmade:zh=200@all", *extra)
        assert [r["token_ids"] for r in plain["rows"]] == [r["token_ids"] for r in remote["rows"]]
        assert plain["rows"][0]["token_ids"] != plain["rows"][1]["token_ids"]  # the intervention acted


def test_generate_dry_run_prints_when_the_run_ends(capsys, sessions):
    code, out, err = run(capsys, "generate", *sessions, "--prompt", "The river", "--max-new-tokens", "4",
                         "--remote", "local")
    assert code == 0 and out.startswith("[baseline]") and "The river" in out, err


def test_ppl_and_score_dry_run_give_the_same_numbers(capsys, sessions, tmp_path):
    held_out = tmp_path / "held-out"  # ppl takes every tenth line: 4 per language keeps this quick
    held_out.mkdir()
    (held_out / "zh.txt").write_text("今天我们去河边散步。\n我们明天再来。\n" * 20, encoding="utf-8")
    (held_out / "en.txt").write_text("\n".join(SENTENCES["en"][:4] * 10) + "\n", encoding="utf-8")
    plain, remote = both(capsys, "ppl", *sessions, "--langs", "zh,en", "--intervene", "handmade:zh=zero",
                         "--corpus", held_out)
    assert plain["rows"] == remote["rows"] and plain["rows"][0]["change"] != 0
    plain, remote = both(capsys, "score", *sessions, "--task", "xnli", "--lang", "zh", "--sample", "2",
                         "--intervene", "handmade:zh=zero")
    assert plain["rows"] == remote["rows"] and plain["rows"][0] != plain["rows"][1]


def test_dry_run_fails_a_payload_that_needs_this_package(demo, monkeypatch):
    """Without shipping lsn_explorer's source, NDIF could not rebuild the job; the dry run must see
    that even though the package is installed here."""
    import cloudpickle.cloudpickle as cp
    import nnsight

    monkeypatch.setattr(cp, "_PICKLE_BY_VALUE_MODULES", set())
    monkeypatch.setattr(nnsight, "register", lambda module: None)
    monkeypatch.setattr(demo, "remote", "local")
    inputs = dict(demo.tokenizer(["hello"], return_tensors="pt"))
    with pytest.raises(RemoteJobError, match="cannot be sent to NDIF: No module named 'lsn_explorer"):
        backend.read_sites(demo, inputs, ("s",))
    monkeypatch.undo()
    assert "lsn_explorer.core.model.backend" in sys.modules  # the package is back after the dry run


def test_remote_job_status_lines_go_to_stderr(capsys):
    """nnsight prints a remote job's status on stdout; under --remote they must not mix with the
    results a command prints there (--json, pipes)."""
    from types import SimpleNamespace

    with backend._remote_job(SimpleNamespace(remote="ndif")):
        print("QUEUED")
    out, err = capsys.readouterr()
    assert out == "" and err == "QUEUED\n"


# --- refused combinations -------------------------------------------------------------------------

STATS = ["stats", "--langs", "en", "--tokens", "100"]
GENERATE = ["generate", "--prompt", "hi"]


@pytest.mark.parametrize("argv, fragment", [
    ([*STATS, "--remote", "--model", REPO, "--detach"], "--remote does not go with --detach"),
    ([*STATS, "--remote", "--model", REPO, "--device-map", "auto"], "--remote does not go with --device-map"),
    ([*STATS, "--remote", "local", "--max-memory", "0=1GiB"], "--remote does not go with --device-map / --max-memory"),
    ([*GENERATE, "--remote", "--model", REPO, "--device", "cpu"], "--remote does not go with --device cpu"),
    ([*GENERATE, "--remote", "local", "--adapter", "x"], "--remote does not go with --adapter"),
    ([*STATS, "--remote", "--model", REPO, "--4bit"], "--remote does not go with --4bit"),
    ([*STATS, "--remote", "local", "--trust-remote-code"], "--remote does not go with --trust-remote-code"),
    (["ppl", "--langs", "en", "--remote", "--model", REPO, "--dtype", "float16"], "--remote does not go with --dtype"),
    ([*STATS, "--remote"], "--remote needs a Hugging Face model id (--model ORG/NAME)"),
    ([*GENERATE, "--remote"], "--remote needs a Hugging Face model id (--model ORG/NAME)"),  # the session has no model
    (["score", "--task", "xnli", "--lang", "zh", "--remote"], "--remote needs a Hugging Face model id"),
    (["stats", "merge", "--remote"], "`stats merge` loads no model"),
])
def test_refused_combinations(tmp_path, capsys, argv, fragment):
    code, _, err = run(capsys, *argv, "--sessions-dir", tmp_path / "s")
    assert_error(code, err, fragment)
    assert err.count("\n") == 2  # one error line, one hint line


def test_refused_local_folder_torchrun_and_a_4bit_session_model(tmp_path, capsys, tiny_checkpoints, monkeypatch):
    code, _, err = run(capsys, *STATS, "--remote", "--model", tiny_checkpoints["llama"], "--sessions-dir", tmp_path)
    assert_error(code, err, "not the local folder", "--remote local")
    with Session.open("q", tmp_path) as session:  # a session whose records were made with a 4-bit model
        session.add("neuron_set", "x", {}, {"model": {"source": REPO, "quantization": "nf4"}})
    code, _, err = run(capsys, *GENERATE, "--remote", "--session", "q", "--sessions-dir", tmp_path)
    assert_error(code, err, f"made with {REPO} in 4-bit")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    code, _, err = run(capsys, *STATS, "--remote", "local", "--sessions-dir", tmp_path)
    assert_error(code, err, "--remote does not go with torchrun")


# --- NDIF up to the network ---------------------------------------------------------------------

@pytest.fixture()
def ndif(monkeypatch, tmp_path):
    """An API key, NDIF_HOST on a port where nothing listens, and REPO in a private hub cache
    (config and tokenizer only, as NDIF users have them). nnsight's config is restored after."""
    import nnsight
    from huggingface_hub import constants

    for name in ("HOST", "APIKEY"):
        monkeypatch.setattr(nnsight.CONFIG.API, name, getattr(nnsight.CONFIG.API, name))
    monkeypatch.setenv("NDIF_API_KEY", "test-key")
    monkeypatch.setenv("NDIF_HOST", "http://127.0.0.1:9")
    snapshot = tmp_path / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / ("0" * 40)
    tiny_model("llama").config.save_pretrained(snapshot)
    tiny_tokenizer().save_pretrained(snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return monkeypatch


class FakeNdif(ThreadingHTTPServer):
    """Answers GET /status like NDIF (configurable), and nothing else (no websocket)."""

    def __init__(self) -> None:
        self.code, self.body, self.keys = 200, b'{"deployments": {}}', []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.keys.append(self.headers.get("ndif-api-key"))
                code, body = (outer.code, outer.body) if self.path == "/status" else (404, b"{}")
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.server_address[1]}"

    def deploy(self, repo: str) -> None:
        self.body = json.dumps({"deployments": {repo: {"repo_id": repo, "application_state": "RUNNING",
                                                       "deployment_level": "HOT", "task": "text-generation"}}}).encode()


@pytest.fixture()
def fake_ndif(ndif):
    server = FakeNdif()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    ndif.setenv("NDIF_HOST", server.host)
    yield server
    server.shutdown()
    server.server_close()


def test_no_api_key_fails_before_the_network(capsys, tmp_path, monkeypatch):
    import nnsight

    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setattr(nnsight.CONFIG.API, "APIKEY", None)
    code, _, err = run(capsys, *GENERATE, "--remote", "--model", REPO)
    assert_error(code, err, "--remote needs an NDIF API key", "NDIF_API_KEY", "nnsight login")


def test_no_api_key_in_a_fresh_process(tmp_path):
    """As a user meets it: a new process, no key in the environment or in nnsight's config file."""
    env = {k: v for k, v in os.environ.items() if k not in ("NDIF_API_KEY", "NNSIGHT_CONFIG")}
    env |= {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-m", "lsn_explorer", *GENERATE, "--remote", "--model", REPO],
                          capture_output=True, text=True, env=env, timeout=120)
    assert_error(done.returncode, done.stderr, "--remote needs an NDIF API key")


def test_nothing_listening_at_ndif_host(capsys, ndif):
    code, _, err = run(capsys, *GENERATE, "--remote", "--model", REPO)
    assert_error(code, err, "cannot reach NDIF at http://127.0.0.1:9")


@pytest.mark.parametrize("code, body, fragment", [
    (401, b'{"detail": "bad key"}', "NDIF refused the API key (HTTP 401)"),
    (503, b"", "answered HTTP 503"),
    (200, b"<html>hello</html>", "did not answer like NDIF"),
    (200, b'{"deployments": {}}', "HF_HUB_OFFLINE is set"),  # NDIF answers; the hub cannot resolve the id offline
])
def test_ndif_answers(capsys, fake_ndif, code, body, fragment):
    fake_ndif.code, fake_ndif.body = code, body
    status, _, err = run(capsys, *GENERATE, "--remote", "--model", REPO)
    assert_error(status, err, fragment)
    assert fake_ndif.keys == ["test-key"]


def test_model_not_running_on_ndif_then_a_job_without_a_server(capsys, fake_ndif, ndif):
    from nnsight.modeling import huggingface

    ndif.setitem(huggingface._ID_CACHE, REPO, REPO)  # as if the hub had confirmed the id
    fake_ndif.deploy("acme/other-model")
    code, _, err = run(capsys, *GENERATE, "--remote", "--model", REPO)
    assert_error(code, err, f"{REPO} is not running on NDIF now", "running now: acme/other-model")
    fake_ndif.deploy(REPO)  # listed as running, but the stand-in takes no job (no websocket)
    code, _, err = run(capsys, *GENERATE, "--remote", "--model", REPO)
    assert_error(code, err, f"NDIF at {fake_ndif.host} did not take the job")


def test_ndif_handle_is_built_on_the_meta_device(fake_ndif, ndif):
    from nnsight.modeling import huggingface

    from lsn_explorer.core.model.architectures import architecture_for
    from lsn_explorer.core.model.remote import load_remote

    ndif.setitem(huggingface._ID_CACHE, REPO, REPO)
    fake_ndif.deploy(REPO)
    handle = load_remote(REPO, "ndif")
    assert handle.remote == "ndif" and handle.device.type == "cpu"
    assert {p.device.type for p in handle.model.parameters()} == {"meta"}
    assert (handle.n_layers, handle.d_ff) == (2, 48) and handle.arch == architecture_for(tiny_model("llama").config)
    assert handle.provenance()["remote"] == "ndif"
