"""The latency report printed at the end of a headless run (``livestems live``, ``play
--headless``): where the delay comes from and what the model cost.

Thread contract: main thread, after (or while) a stream runs; it reads the engine's telemetry
through ``snapshot()`` (a copy, no lock) and touches nothing the audio callback owns.

Each latency is given apart, in samples and milliseconds: the processor's algorithmic latency
(what the model's frame geometry adds, measured with an impulse), the engine's buffer (the
worker's head start), a live transposition's FIFO (Rubber Band, when asked for), the device's
own buffers (what the back-end reports), and their sum.
"""

from __future__ import annotations

import math

from .engine import Engine

LABEL_WIDTH = 20  # "algorithmic latency:"


def _samples_ms(n_samples: int, sample_rate: int) -> str:
    return f"{n_samples} samples = {1000.0 * n_samples / sample_rate:.2f} ms"


def format_report(engine: Engine, device_latency_samples: int, model_name: str) -> str:
    """The report, one ``label: value`` line each.

    Args:
        engine: the engine that ran (its telemetry is read now).
        device_latency_samples: the back-end's own latency (input plus output buffers).
        model_name: how to name the model (a file name).
    """
    sample_rate = engine.settings.sample_rate
    preset = engine.processor.preset
    snapshot = engine.telemetry.snapshot()
    algorithmic = engine.processor.latency_samples
    buffer = engine.buffer_samples
    transpose = engine.transpose_samples
    total = algorithmic + buffer + transpose + device_latency_samples
    hop_ms = 1000.0 * preset.hop / sample_rate
    p50, p99, worst = snapshot.hop_percentiles_ms()
    if math.isnan(p50):
        compute = "no hop computed"
    else:
        compute = (
            f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {worst:.3f} ms "
            f"({100 * p50 / hop_ms:.1f}%, {100 * p99 / hop_ms:.1f}%, {100 * worst / hop_ms:.1f}% "
            f"of the {hop_ms:.2f} ms hop; {snapshot.hops} hops)"
        )
    rows = [
        ("model", model_name),
        (
            "preset",
            f"{preset.name} (window {preset.n_fft}, hop {preset.hop}, synthesis "
            f"{preset.synthesis_length}) at {sample_rate} Hz",
        ),
        ("algorithmic latency", _samples_ms(algorithmic, sample_rate)),
        ("engine buffer", _samples_ms(buffer, sample_rate)),
        *(
            [
                (
                    "live transpose",
                    f"{_samples_ms(transpose, sample_rate)} (Rubber Band, "
                    f"{engine.transpose:+.2f} semitones)",
                )
            ]
            if engine.transposer is not None
            else []
        ),
        ("device latency", _samples_ms(device_latency_samples, sample_rate)),
        ("total latency", _samples_ms(total, sample_rate)),
        ("compute per hop", compute),
        (
            "played",
            f"{snapshot.samples_played / sample_rate:.2f} s in blocks of "
            f"{engine.settings.block_size} samples",
        ),
        (
            "under-runs",
            f"{snapshot.underruns} (worst lateness {snapshot.worst_lateness_samples} samples)",
        ),
        ("device xruns", str(snapshot.device_xruns)),
        ("real-time", f"worker {engine.scheduling}; memory {engine.memory}"),
    ]
    source = engine.source
    if source is not None and hasattr(source, "stretch_delay_samples"):
        rows.insert(
            rows.index(("total latency", _samples_ms(total, sample_rate))) + 1,
            ("tempo and key", _practice(source, sample_rate)),
        )
    return "\n".join(f"{label + ':':<{LABEL_WIDTH}} {value}" for label, value in rows)


def _practice(source, sample_rate: int) -> str:  # noqa: ANN001 - a PracticeSource
    """The practice source's part: its settings, Rubber Band's hold-back (primed away, so it
    delays no sample of the song, only how soon a change is heard) and its read-ahead."""
    settings = f"tempo {100 * source.tempo:.0f}%, transpose {source.transpose:+.2f} semitones"
    delay = source.stretch_delay_samples
    stretch = (
        f"Rubber Band holds {_samples_ms(delay, sample_rate)}, primed away (song time kept)"
        if delay
        else "Rubber Band not engaged (the song as recorded)"
    )
    ahead = _samples_ms(source.lead_samples, sample_rate)
    return f"{settings}; {stretch}; read ahead {ahead}; source under-runs {source.underruns}"
