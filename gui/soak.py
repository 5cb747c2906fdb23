"""Under-runs with the window open and painting: the figure that decides whether the engine may
share a process (and the GIL) with the GUI (DESIGN.md, the GIL paragraph).

    python -m livestems.gui.soak [--seconds 120] [--block-size 256] [--model M.onnx]
                                 [--no-window | --engine-process]

Starts a JACK dummy server of its own, plays the bundled demo (else a generated song) in a loop
through the model (default: the bundled one, else the identity), with the window shown and its
timer painting, and prints: under-runs, audio callbacks, device xruns, compute per hop, and the
GUI timer's achieved frame rate (frames per second, and the median, p1 and p99 of the intervals
between frames), and the CPU share of the window's process and of the engine's (CPU seconds over
wall seconds from the end of the warm-up to the end, in % of one core). ``--engine-process``
puts the engine in a process of its own (shared-memory telemetry, controls on a pipe:
``engine_process.py``). ``--no-window`` runs the same stream with no Qt at all: the baseline
that tells what the window costs from what the machine costs. Qt's platform comes from the
environment (``QT_QPA_PLATFORM=offscreen``, or a display such as Xvfb's).

Thread contract: the main thread runs Qt's event loop (the window's timer), as in the app; the
engine's worker and PortAudio's callback run as they always do.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from ..realtime.backends.jack_server import JackServer
from ..realtime.dsp.presets import SAMPLE_RATE
from ..realtime.engine.telemetry import TelemetrySnapshot
from ..realtime.io.generated_song import generated_song
from ..realtime.runtime.catalog import bundled_demo_song
from .session import BUNDLED, AudioSession, SessionSettings


def start_jack_server(block_size: int) -> JackServer:
    """A JACK dummy server that PortAudio sees (the window's engine plays through PortAudio's
    JACK host API)."""
    return JackServer("soak", SAMPLE_RATE, block_size, wait_for="portaudio").start()


def stop_jack_server(server: JackServer) -> None:
    server.stop()


def song_path(folder: Path) -> tuple[Path, str]:
    """The bundled demo, else a generated song written to ``folder``; and which it is."""
    demo = bundled_demo_song()
    if demo is not None:
        return demo, "the bundled demo song"
    path = folder / "generated.wav"
    soundfile.write(path, generated_song(30.0), SAMPLE_RATE)
    return path, "a generated 30 s song (no demo is bundled here)"


def report(
    label: str, snapshot: TelemetrySnapshot, block_size: int, hop: int, elapsed: float
) -> str:
    p50, p99, worst = snapshot.hop_percentiles_ms()
    hop_ms = 1000.0 * hop / SAMPLE_RATE
    return (
        f"{label}: {elapsed:.1f} s, {snapshot.samples_played // block_size} audio callbacks of "
        f"{block_size} samples, {snapshot.underruns} under-runs (worst lateness "
        f"{snapshot.worst_lateness_samples} samples), {snapshot.device_xruns} device xruns; "
        f"compute per hop p50 {p50:.3f} ms ({p50 / hop_ms:.2f} of the hop), p99 {p99:.3f} ms "
        f"({p99 / hop_ms:.2f}), max {worst:.2f} ms"
    )


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process (default: this one), in MB; NaN where /proc is missing."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def memory_report(before: dict[str, float], after: dict[str, float]) -> str:
    """Resident memory of each process at the end of the warm-up and at the end of the run."""
    parts = [
        f"{name} {before[name]:.1f} -> {after[name]:.1f} MB ({after[name] - before[name]:+.1f})"
        for name in before
    ]
    return "memory growth after the first 10 s: " + "; ".join(parts)


def cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU time of a process (default: this one, from ``os.times``; another
    from ``/proc/<pid>/stat``, NaN where that is missing)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    # utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_report(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> str:
    """Each process's CPU share between two (wall seconds, CPU seconds) marks, in % of a core."""
    parts = []
    for name in before:
        wall = after[name][0] - before[name][0]
        cpu = after[name][1] - before[name][1]
        share = 100.0 * cpu / wall if wall > 0 else float("nan")
        parts.append(f"{name} {share:.1f} % of a core ({cpu:.1f} CPU s in {wall:.1f} s)")
    return "CPU after the warm-up: " + "; ".join(parts)


def frame_rate_report(intervals: np.ndarray, elapsed: float) -> str:
    if intervals.size == 0:
        return "GUI: no frames"
    p1, p50, p99 = np.percentile(intervals * 1000.0, [1, 50, 99])
    return (
        f"GUI timer: {intervals.size + 1} frames, {(intervals.size + 1) / elapsed:.1f} frames/s "
        f"achieved; interval median {p50:.1f} ms ({1000.0 / p50:.1f} Hz), p1 {p1:.1f} ms, "
        f"p99 {p99:.1f} ms, max {intervals.max() * 1000.0:.1f} ms"
    )


def run_window(
    path: Path, settings: SessionSettings, seconds: float, folder: Path, engine_process: bool
) -> None:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from .settings_store import ini_store, save_session_settings
    from .window import LivestemsWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("livestems")
    store = ini_store(str(folder / "settings.ini"))  # never the user's own settings
    save_session_settings(store, settings)
    window = LivestemsWindow(store, path, open_midi=False, engine_process=engine_process)
    window.show()
    source, status = window.session.source, window.session.status()
    if source is None or status is None:
        raise SystemExit(window.message.text())
    source.set_loop(0.0, source.duration)
    # In-process, the engine's own telemetry stays readable if the window stops a lost stream.
    engine = window.session.engine
    engine_pid = getattr(getattr(window.session, "process", None), "pid", None)

    def resident() -> dict[str, float]:
        found = {"window process": rss_mb()}
        if engine_pid is not None:
            found["engine process"] = rss_mb(engine_pid)
        return found

    def cpu_marks() -> dict[str, tuple[float, float]]:
        now = time.monotonic()
        found = {"window process": (now, cpu_seconds())}
        if engine_pid is not None:
            found["engine process"] = (now, cpu_seconds(engine_pid))
        return found

    def end_of_warm_up() -> None:
        before.update(resident())
        cpu_before.update(cpu_marks())

    # memory and CPU are measured from the end of a warm-up (caches, the first spectrogram
    # columns)
    before: dict[str, float] = {}
    cpu_before: dict[str, tuple[float, float]] = {}
    QTimer.singleShot(min(10_000, round(seconds * 500)), end_of_warm_up)
    started = time.monotonic()
    # Not app.quit(): in Qt 6 it closes the window first, which ends the stream before it is
    # measured.
    loop = QEventLoop()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    loop.exec()
    elapsed = time.monotonic() - started
    after = resident()
    cpu_after = cpu_marks()
    snapshot = engine.telemetry.snapshot() if engine is not None else window.session.snapshot()
    message = window.message.text()
    window.shutdown()
    print(f"model: {window.session.model_name}; {message}".rstrip("; "))
    if snapshot is None:
        raise SystemExit(f"the stream stopped: {message}")
    where = "engine in its own process" if engine_process else "engine in the GUI's process"
    label = f"window open, {where}"
    print(report(label, snapshot, settings.block_size, status.hop, elapsed))
    print(frame_rate_report(window.frame_intervals(), elapsed))
    print(cpu_report(cpu_before or cpu_after, cpu_after))
    print(memory_report(before or after, after))


def run_headless(path: Path, settings: SessionSettings, seconds: float) -> None:
    session = AudioSession(settings)
    session.open_song(path)
    session.start()
    source, engine = session.source, session.engine
    assert source is not None and engine is not None
    source.set_loop(0.0, source.duration)
    started = time.monotonic()
    before: dict[str, float] = {}
    cpu_before: dict[str, tuple[float, float]] = {}
    while time.monotonic() - started < seconds:
        time.sleep(0.1)
        if not before and time.monotonic() - started >= min(10.0, seconds / 2):
            before = {"process": rss_mb()}
            cpu_before = {"process": (time.monotonic(), cpu_seconds())}
    elapsed = time.monotonic() - started
    after = {"process": rss_mb()}
    cpu_after = {"process": (time.monotonic(), cpu_seconds())}
    snapshot = engine.telemetry.snapshot()
    hop = engine.processor.preset.hop
    session.stop()
    print(f"model: {session.model_name}")
    print(report("no window", snapshot, settings.block_size, hop, elapsed))
    print(cpu_report(cpu_before or cpu_after, cpu_after))
    print(memory_report(before or after, after))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--model", default=BUNDLED, help="a .onnx file (default: bundled)")
    parser.add_argument("--no-window", action="store_true", help="the baseline: no Qt at all")
    parser.add_argument(
        "--engine-process", action="store_true", help="the engine in a process of its own"
    )
    args = parser.parse_args(argv)
    settings = SessionSettings(model=args.model, block_size=args.block_size)
    server = start_jack_server(args.block_size)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path, what = song_path(Path(folder))
            print(
                f"song: {what}; JACK dummy server at {SAMPLE_RATE} Hz, blocks of "
                f"{args.block_size} samples"
            )
            if args.no_window:
                run_headless(path, settings, args.seconds)
            else:
                run_window(path, settings, args.seconds, Path(folder), args.engine_process)
    finally:
        stop_jack_server(server)


if __name__ == "__main__":
    main()
