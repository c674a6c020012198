"""The prepared device check (bench/gpu_8b.py) runs end to end: a session lent a GPU has minutes
of device time, too few to find a broken script there. Its tiny shape runs the same code on a CPU."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_8b.py"


def test_the_gpu_bench_script_measures_both_precisions_on_its_tiny_shape(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--shape", "tiny", "--tokens", "2048", "--new-tokens", "4",
                           "--repeat", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600,
                          env=os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "gpu_8b.json").read_text())
    assert results["shape"] == "tiny"
    for precision in ("bf16", "nf4"):
        row = results[precision]
        assert row["tokens"] == 2048
        for key in ("stats_ratio", "intervened_forward_ratio", "side_by_side_ratio", "two_plain_rows_ratio",
                    "one_intervened_row_ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, (precision, key, row[key])
    assert "ratio" in done.stdout and "nf4: loaded" in done.stdout
