"""The latency report: each latency apart and their sum, compute per hop against the hop."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np

from livestems.realtime.backends.portaudio import OfflineBackend
from livestems.realtime.dsp.presets import PRESETS
from livestems.realtime.engine.engine import Engine, EngineSettings
from livestems.realtime.engine.processor import IdentityHopModel, StreamProcessor
from livestems.realtime.engine.report import format_report
from livestems.realtime.engine.sources import FileSource


def _engine() -> Engine:
    preset = PRESETS["ultra"]
    audio = np.zeros((44100, 2), dtype=np.float32)
    return Engine(
        StreamProcessor(IdentityHopModel(preset), preset),
        EngineSettings(44100, 128),
        FileSource(audio, 44100),
    )


def test_report_before_and_after_a_run() -> None:
    engine = _engine()
    before = format_report(engine, 300, "identity").splitlines()
    assert "compute per hop:     no hop computed" in before
    OfflineBackend(engine).render(44100)
    engine.telemetry.device_xruns = 2
    lines = format_report(engine, 300, "identity").splitlines()
    assert lines[:6] == [
        "model:               identity",
        "preset:              ultra (window 1024, hop 128, synthesis 256) at 44100 Hz",
        "algorithmic latency: 254 samples = 5.76 ms",
        "engine buffer:       512 samples = 11.61 ms",
        "device latency:      300 samples = 6.80 ms",
        "total latency:       1066 samples = 24.17 ms",
    ]
    # The last block's hops may still be in the worker when the render stops.
    assert re.fullmatch(
        r"compute per hop:     p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms "
        r"\([\d.]+%, [\d.]+%, [\d.]+% of the 2\.90 ms hop; 34\d hops\)",
        lines[6],
    ), lines[6]
    assert lines[7:10] == [
        "played:              1.00 s in blocks of 128 samples",
        "under-runs:          0 (worst lateness 0 samples)",
        "device xruns:        2",
    ]
    # the worker asked for SCHED_FIFO as it started; granted where the user may (root, the
    # audio group), a sentence why not elsewhere; this test process locked nothing
    assert re.fullmatch(
        r"real-time:           worker (SCHED_FIFO 70 granted|refused \(.+\)); "
        r"memory not locked \(not asked for\)",
        lines[10],
    ), lines[10]


def test_real_time_requests_say_what_was_granted() -> None:
    import threading

    from livestems.realtime.engine.priority import request_realtime_scheduling

    assert request_realtime_scheduling(None) == "not asked for"
    results: list[str] = []
    # a priority no scheduler accepts: refused in one phrase, never an exception
    thread = threading.Thread(target=lambda: results.append(request_realtime_scheduling(1000)))
    thread.start()
    thread.join()
    assert results[0].startswith("refused (") and "RLIMIT_RTPRIO" in results[0]
    # in a process of its own: locking this one would fault in all it maps (torch, in a run
    # of the whole suite)
    locked = subprocess.run(
        [sys.executable, "-c", "from livestems.realtime.engine.priority import lock_memory\n"
         "print(lock_memory())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert re.fullmatch(r"locked \(\d+ MB resident\)|not locked \(.+\)", locked), locked
