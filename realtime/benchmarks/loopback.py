"""Loopback latency through JACK: an impulse into the engine's input, timed until it comes back.

Thread contract: ``measure_loopback_latency`` runs on the main thread while the back-end
plays; it opens two probe clients on the same server, whose process callbacks (JACK's thread)
write one impulse and look for its return, timing both in JACK's frame clock. It blocks until
the impulse is back or the timeout passes, then has each probe's process thread end itself
before closing it (``SelfEndingProcess``).

The impulse goes through the model path by default: the stream processor (analysis, the
model's masks, synthesis per stem) and the stem mixer, with every fader at unity. When a
model's masks sum to one across stems in every bin (``softmax`` and ``ratio`` masks, or the
identity model), the stems sum to the input delayed by the algorithmic latency, so the impulse
comes back whole after exactly ``Engine.latency_samples``, and a processor or mixer that shifted
or lost it would show. ``path="bypass"`` measures the dry delay line instead (for sigmoid masks,
whose stems need not sum to the input): that line is pre-filled with the latency, so it checks
the back-end and JACK's graph, not the model path.

The route back is either JACK itself (``mix_L`` straight to the listener: the engine's own
latency, ``Engine.latency_samples``, to the sample) or a cable from a playback port to a
capture port (``through``): then the device's buffers and converters are in the loop too, which
is the end-to-end delay a musician hears.
"""

from __future__ import annotations

import errno
import time
from typing import Any

import numpy as np

from ..backends.jack import JackPortsBackend, SelfEndingProcess, end_and_close, open_client
from ..backends.portaudio import DeviceError

FRAME_CLOCK = 1 << 32  # jack_nframes_t wraps around


class _Probe:
    """An emitter client (one output) and a listener client (one input): two clients, so
    that emitter -> engine -> listener is no cycle in JACK's graph (a cycle would add a
    period)."""

    def __init__(self, server_name: str | None, threshold: float) -> None:
        self.threshold = threshold
        self.armed = False
        self.emitted_at: int | None = None
        self.heard_at: int | None = None
        self.emitter = open_client("livestems-impulse", server_name)
        self.listener = open_client("livestems-return", server_name)
        self.out = self.emitter.outports.register("impulse")
        self.into = self.listener.inports.register("return")
        self.active = False
        self.emit_process = SelfEndingProcess(self._emit)
        self.listen_process = SelfEndingProcess(self._listen)
        self.emitter.set_process_callback(self.emit_process)
        self.listener.set_process_callback(self.listen_process)

    def _emit(self, frames: int) -> None:
        buffer = self.out.get_array()
        buffer.fill(0.0)
        if self.armed and self.emitted_at is None:
            buffer[0] = 1.0
            self.emitted_at = self.emitter.last_frame_time

    def _listen(self, frames: int) -> None:
        if self.emitted_at is None or self.heard_at is not None:
            return
        loud = np.flatnonzero(np.abs(self.into.get_array()) >= self.threshold)
        if loud.size:
            self.heard_at = self.listener.last_frame_time + int(loud[0])

    def activate(self) -> None:
        self.active = True
        self.emitter.activate()
        self.listener.activate()

    def close(self) -> None:
        end_and_close(self.emitter, self.emit_process, self.active)
        end_and_close(self.listener, self.listen_process, self.active)


def _connect(client: Any, source: Any, destination: Any, made: list[tuple[Any, Any]]) -> None:
    """Connect unless already connected; note what was made, to undo it."""
    try:
        client.connect(source, destination)
    except Exception as error:  # jack.JackErrorCode
        if getattr(error, "code", None) != errno.EEXIST:
            raise
        return
    made.append((source, destination))


def measure_loopback_latency(
    backend: JackPortsBackend,
    through: tuple[str, str] | None = None,
    timeout: float = 2.0,
    threshold: float = 0.5,
    path: str = "model",
) -> int:
    """Frames from an impulse entering ``in_L`` to its return from ``mix_L``.

    Args:
        backend: a started JACK back-end whose engine plays its input (no file source).
        through: ``(playback port, capture port)`` joined by a loopback cable, e.g.
            ``("system:playback_1", "system:capture_1")``; ``None``: straight back in JACK.
        timeout: seconds to wait for the impulse.
        threshold: the smallest magnitude taken for the impulse (it is sent at 1.0).
        path: ``"model"`` (the stems, mixed) or ``"bypass"`` (the dry delay line).

    Raises:
        DeviceError: the impulse did not come back in time (no cable, a muted route).
    """
    engine = backend.engine
    if engine.source is not None:
        raise ValueError("the loopback needs a live engine (no file source)")
    if path not in ("model", "bypass"):
        raise ValueError(f"path must be 'model' or 'bypass', got {path!r}")
    probe = _Probe(backend.server_name, threshold)
    was_bypassed = engine.bypassed
    client = backend.client
    made: list[tuple[Any, Any]] = []
    try:
        engine.set_bypass(path == "bypass")
        probe.activate()
        _connect(client, probe.out, backend.input_ports[0], made)
        if through is None:
            _connect(client, backend.mix_ports[0], probe.into, made)
        else:
            playback, capture = through
            _connect(client, backend.mix_ports[0], playback, made)
            _connect(client, capture, probe.into, made)
        # The bypass cross-fade (~10 ms) and the connections settle before the impulse.
        time.sleep(0.1 + 4 * engine.settings.block_size / engine.settings.sample_rate)
        probe.armed = True
        deadline = time.monotonic() + timeout
        while probe.heard_at is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        for source, destination in made:
            try:
                client.disconnect(source, destination)
            except Exception:  # the probe's ports went with it, or the server did
                pass
        probe.close()
        engine.set_bypass(was_bypassed)
    if probe.emitted_at is None or probe.heard_at is None:
        route = "straight through JACK" if through is None else f"through {' -> '.join(through)}"
        raise DeviceError(
            f"The impulse sent into {backend.input_ports[0].name} did not come back {route} "
            f"within {timeout:g} s: check the loopback connection."
        )
    return (probe.heard_at - probe.emitted_at) % FRAME_CLOCK
