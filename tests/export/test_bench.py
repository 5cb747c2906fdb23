"""`livestems bench --quick` end to end, in a process of its own (it starts its own JACK dummy
server, and libjack talks to one server per process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from livestems.export.onnx_export import export_onnx  # noqa: E402
from livestems.models.families.lstm import LstmConfig  # noqa: E402
from tests.helpers.networks import randomized  # noqa: E402


@pytest.mark.slow
def test_quick_bench_measures_a_model_and_the_loopback_agrees(tmp_path: Path) -> None:
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed")
    model = tmp_path / "small.onnx"
    export_onnx(randomized(LstmConfig(preset="live", hidden_size=64), seed=60), model)
    script = shutil.which("livestems", path=str(Path(sys.executable).parent))
    assert script is not None
    env = {key: value for key, value in os.environ.items() if not key.startswith("JACK_")}
    result = subprocess.run(
        [script, "bench", "--quick", "--model", str(model), "-o", str(tmp_path / "out"),
         "--input-seconds", "4"],
        capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert payload["machine"]["cores"] and "CPUExecutionProvider" in payload["machine"]["providers"]
    (cell,) = payload["cells"]
    assert cell["algorithmic_latency_samples"] == cell["declared_latency_samples"] == 510
    assert cell["hop_p50_ms"] > 0 and cell["offline_rtf"] > 0
    assert cell["underruns"] is not None and cell["stream_seconds"] > 1.0
    # The impulse through JACK comes back after the sum of the parts, within one block.
    assert cell["loopback_agrees"], cell
    assert (tmp_path / "out" / "bench.md").read_text().startswith("| model |")
    assert "random weights" in (tmp_path / "out" / "bench.md").read_text()
    assert (tmp_path / "out" / "bench.png").exists() or "no plot" in result.stdout
