"""--device-map auto (accelerate's big-model loading) and --max-memory: on this CPU-only machine
every layer lands on the CPU, and interventions, latent states and statistics equal a plain load.
(Several GPUs are not available here; the README's "Scaling out" says what is measured where.)"""

from __future__ import annotations

import pytest
import torch

from lsn_explorer import cli
from lsn_explorer.core.interventions.resolve import resolve
from lsn_explorer.core.interventions.spec import parse_intervention
from lsn_explorer.core.latent.states import text_states
from lsn_explorer.core.model.backend import forward_logits
from lsn_explorer.core.model.loading import ModelLoadError, load_model
from lsn_explorer.core.model.placement import parse_max_memory


def test_parse_max_memory():
    assert parse_max_memory("0=20GiB, 1=18.5GiB,cpu=64GB") == {0: "20GiB", 1: "18.5GiB", "cpu": "64GB"}
    assert parse_max_memory(None) is None
    for bad in ("0:20GiB", "gpu=1GiB", "0=20", "0=lots"):
        with pytest.raises(ModelLoadError, match="bad --max-memory") as info:
            parse_max_memory(bad)
        assert "0=20GiB" in info.value.hint


def test_auto_device_map_equals_a_plain_load(demo):
    spread = load_model(device_map="auto", max_memory={"cpu": "4GiB"})
    assert {p.device.type for p in spread.model.parameters()} == {"cpu"}
    inputs = dict(demo.tokenizer(["The cat sleeps.", "A longer sentence here."], return_tensors="pt", padding=True))
    for handle in (demo, spread):
        handle.plan = resolve([parse_intervention("1.5,3.700,4.12=zero")], handle)
    torch.testing.assert_close(forward_logits(spread, inputs, spread.plan), forward_logits(demo, inputs, demo.plan))
    torch.testing.assert_close(text_states(spread, ["Hello there.", "Bonjour."]), text_states(demo, ["Hello there.", "Bonjour."]))


@pytest.mark.parametrize("argv, fragment", [
    (["model", "info", "--max-memory", "0=1GiB"], "--max-memory without --device-map"),
    (["model", "info", "--device-map", "auto", "--device", "cpu"], "--device-map auto with --device cpu"),
    (["model", "info", "--device-map", "auto", "--max-memory", "0:1GiB"], "bad --max-memory"),
    (["stats", "--langs", "en", "--tokens", "100", "--device-map", "auto", "--detach"], "--device-map does not go with --detach"),
])
def test_placement_bad_input(tmp_path, capsys, argv, fragment):
    code = cli.main([*argv, *(["--sessions-dir", str(tmp_path)] if argv[0] == "stats" else [])])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 2 and fragment in err, err
