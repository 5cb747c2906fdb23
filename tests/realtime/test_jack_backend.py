"""The JACK back-end on a real JACK dummy server: a port pair per stem, each carrying its stem
delayed by exactly the engine's latency (recorded by a second JACK client), no under-runs, no
array allocation in the callback, and device problems (no server, wrong rate or block size, a
server that goes away) in one sentence."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from livestems.realtime.backends.jack import (
    NO_SERVER,
    JackPortsBackend,
    SelfEndingProcess,
    end_and_close,
)
from livestems.realtime.backends.jack_server import JackServer, jackd_available
from livestems.realtime.backends.portaudio import DeviceError
from livestems.realtime.benchmarks.loopback import measure_loopback_latency
from livestems.realtime.dsp.presets import PRESETS
from livestems.realtime.engine.engine import Engine, EngineSettings
from livestems.realtime.engine.processor import IdentityHopModel, StreamProcessor
from livestems.realtime.engine.sources import FileSource
from tests.helpers.allocations import measure_allocations
from tests.helpers.doubles import ChannelSplitModel
from tests.helpers.underruns import MOST_UNDERRUNS_PER_BLOCK, assert_equal_but_for_underruns

jack = pytest.importorskip("jack")

SAMPLE_RATE = 44100
BLOCK = 256
# The worker's head start in the timed tests: 8 blocks (46 ms) instead of the default 10 ms, so
# that a scheduling hiccup on a busy machine (the suite shares it) is seldom an under-run, which
# blanks the stem ports for a block. The expected delay is the engine's reported latency either way.
BUFFER_BLOCKS = 8
# The share of frames the test clients must have recorded (all of them on an idle machine).
MIN_COVERED = 0.8


def _noise(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 0.5, (int(seconds * SAMPLE_RATE), 2)).astype(np.float32)


def _split_engine(
    signal: np.ndarray | None, block: int = BLOCK, buffer_blocks: int | None = None
) -> Engine:
    """Stems ``left`` (the left channel) and ``right`` (the right), from a file or live."""
    preset = PRESETS["live"]
    source = None if signal is None else FileSource(signal, SAMPLE_RATE)
    return Engine(
        StreamProcessor(ChannelSplitModel(preset), preset),
        EngineSettings(SAMPLE_RATE, block, buffer_blocks=buffer_blocks),
        source,
    )


class PortRecorder:
    """A second JACK client that records the ports given into an array allocated up front.

    Each block goes where ``end_index()`` says its end is (read in the recorder's callback,
    which JACK runs after the client that feeds it, in the same cycle; ``None``: not yet), so
    the recording is aligned to the input whenever the connections took effect.

    ``covered`` marks the frames recorded in step with the back-end: on a loaded machine JACK
    now and then runs a late Python client out of order (and counts an xrun), and a block that
    the recorder copied while the back-end was mid-cycle (``sequence`` odd, or changed) says
    nothing about the back-end.
    """

    def __init__(
        self,
        sources: list[str],
        n_frames: int,
        end_index: Callable[[], int | None],
        sequence: list[int],
    ) -> None:
        self.buffer = np.zeros((n_frames, len(sources)), dtype=np.float32)
        self.covered = np.zeros(n_frames, dtype=bool)
        self.end_index = end_index
        self.sequence = sequence
        self.client = jack.Client("livestems-test-recorder", no_start_server=True)
        self.ports = [self.client.inports.register(f"in_{i}") for i in range(len(sources))]
        self.sources = sources
        self.process = SelfEndingProcess(self._process)
        self.client.set_process_callback(self.process)

    def _process(self, frames: int) -> None:
        before = self.sequence[0]
        end = self.end_index()
        if before % 2 or end is None or end < frames or end - frames >= self.buffer.shape[0]:
            return
        start = end - frames
        take = min(frames, self.buffer.shape[0] - start)
        for i, port in enumerate(self.ports):
            self.buffer[start : start + take, i] = port.get_array()[:take]
        self.covered[start : start + take] = self.sequence[0] == before

    def __enter__(self) -> PortRecorder:
        self.client.activate()
        for source, port in zip(self.sources, self.ports, strict=True):
            self.client.connect(source, port)
        return self

    def __exit__(self, *exc: object) -> None:
        end_and_close(self.client, self.process)


def _count_cycles(backend: JackPortsBackend) -> list[int]:
    """Wraps the back-end's process callback (before ``start``): the number it returns grows by
    one as a cycle begins and one as it ends, so it is odd while the back-end runs a cycle."""
    sequence = [0]
    callback = backend._process_callback
    process = callback.process

    def counted(frames: int) -> None:
        sequence[0] += 1
        process(frames)
        sequence[0] += 1

    callback.process = counted
    return sequence


def _client_ports(client_name: str) -> set[str]:
    with jack.Client("livestems-test-probe", no_start_server=True) as probe:
        return {port.name for port in probe.get_ports(f"^{client_name}:")}


def test_ports_carry_the_mix_and_each_stem(jack_server) -> None:
    engine = _split_engine(_noise(1.0, seed=1))
    backend = JackPortsBackend(engine)
    name = backend.client.name
    try:
        expected = {"in_L", "in_R", "mix_L", "mix_R", "left_L", "left_R", "right_L", "right_R"}
        assert _client_ports(name) == {f"{name}:{port}" for port in expected}
        assert backend.port_names[:4] == [f"{name}:{p}" for p in ("in_L", "in_R", "mix_L", "mix_R")]
        backend.start()
        # The mix goes to the system's playback ports; with a file playing, nothing comes in.
        mix_l = backend.client.get_port_by_name(f"{name}:mix_L")
        mix_r = backend.client.get_port_by_name(f"{name}:mix_R")
        assert [port.name for port in backend.client.get_all_connections(mix_l)] == [
            "system:playback_1"
        ]
        assert [port.name for port in backend.client.get_all_connections(mix_r)] == [
            "system:playback_2"
        ]
        in_l = backend.client.get_port_by_name(f"{name}:in_L")
        assert backend.client.get_all_connections(in_l) == []
        # The dummy server: one period of capture (unused here), two of playback.
        assert backend.device_latency_samples == 2 * BLOCK
    finally:
        backend.stop()
    assert _client_ports(name) == set()


def test_stop_lets_the_process_thread_end_itself_before_deactivating(jack_server) -> None:
    """libjack's deactivate cancels a process thread still running; cancelled in Python, it
    left the GIL locked and Ctrl-C hung (see the back-end's thread contract)."""
    engine = _split_engine(_noise(2.0, seed=3))
    backend = JackPortsBackend(engine)
    name = backend.client.name
    backend.start()
    backend.run_for(0.2)
    assert not backend.process_thread_ended_itself
    backend.stop()
    assert backend.process_thread_ended_itself
    assert not Path(
        f"/proc/self/task/{backend._process_callback.thread_id}"
    ).exists()  # gone, not killed
    assert _client_ports(name) == set()
    never_started = JackPortsBackend(_split_engine(_noise(1.0, seed=4)))
    never_started.stop()  # nothing to wait for
    assert not never_started.process_thread_ended_itself


@pytest.mark.slow
def test_each_stem_port_plays_its_stem_delayed_by_the_engine_latency(jack_server) -> None:
    seconds = 3.0
    signal = _noise(seconds + 0.5, seed=2)
    engine = _split_engine(signal, buffer_blocks=BUFFER_BLOCKS)
    assert engine.buffer_samples == BUFFER_BLOCKS * BLOCK
    source = engine.source
    assert source is not None
    source.pause()  # silence until the recorder listens
    backend = JackPortsBackend(engine, connect_outputs=False)
    name = backend.client.name
    ports = ["left_L", "left_R", "right_L", "right_R", "mix_L", "mix_R"]
    n_frames = int(seconds * SAMPLE_RATE)
    # A block ends where the file's position is after our client's cycle.
    sequence = _count_cycles(backend)
    recorder = PortRecorder(
        [f"{name}:{port}" for port in ports], n_frames, lambda: source.position or None, sequence
    )
    try:
        backend.start()  # ports connect only between active clients
        with recorder:
            time.sleep(0.1)
            source.play()
            backend.run_for(seconds + 1.0)  # until the file ends
    finally:
        backend.stop()
    snapshot = engine.telemetry.snapshot()
    assert engine.worker_error is None
    assert source.finished
    # Made once per output port at the first cycle; never again (no array per cycle).
    assert backend.views_made == len(ports)

    delay = engine.latency_samples
    recorded, covered = recorder.buffer, recorder.covered
    assert covered.mean() >= MIN_COVERED, covered.mean()
    assert np.abs(recorded[:delay][covered[:delay]]).max() < 1e-5  # the latency, as silence
    valid = covered[delay:]
    delayed = signal[: n_frames - delay]
    zeros = np.zeros(n_frames - delay, dtype=np.float32)
    expected = {
        "left_L": delayed[:, 0],
        "left_R": zeros,
        "right_L": zeros,
        "right_R": delayed[:, 1],
        "mix_L": delayed[:, 0],
        "mix_R": delayed[:, 1],
    }
    # An under-run blanks the stem ports (the mix plays the dry input) for its block only.
    for i, port in enumerate(ports):
        assert_equal_but_for_underruns(
            recorded[delay:, i][valid], expected[port][valid], snapshot.underruns, BLOCK,
            snapshot.samples_played // BLOCK, atol=1e-5, err_msg=port,
        )  # fmt: skip


@pytest.mark.slow
def test_live_input_ports_feed_the_engine(jack_server) -> None:
    """Live: a test client plays noise into ``in_L``/``in_R``; the mix gives it back."""
    engine = _split_engine(None, buffer_blocks=BUFFER_BLOCKS)
    backend = JackPortsBackend(engine, connect_outputs=False, connect_inputs=False)
    name = backend.client.name
    sent = np.random.default_rng(5).uniform(-0.5, 0.5, (4 * SAMPLE_RATE, 2)).astype(np.float32)
    # The stream frame where the player starts (set once everything is connected); the
    # player runs before our client in each cycle, the recorder after it.
    start: list[int | None] = [None]

    def end_index() -> int | None:
        begun = start[0]
        return None if begun is None else engine.telemetry.samples_played - begun

    player = jack.Client("livestems-test-player", no_start_server=True)
    outs = [player.outports.register(f"out_{c}") for c in "LR"]

    played = np.zeros(sent.shape[0], dtype=bool)  # the frames the player sent in step
    sequence = _count_cycles(backend)

    def play(frames: int) -> None:
        before = sequence[0]
        begun = start[0]
        offset = engine.telemetry.samples_played - (begun if begun is not None else 1 << 62)
        for c, port in enumerate(outs):
            if 0 <= offset <= sent.shape[0] - frames:
                port.get_array()[:] = sent[offset : offset + frames, c]
            else:
                port.get_array().fill(0.0)
        if 0 <= offset <= sent.shape[0] - frames:
            # In step only if the back-end was between cycles all along (see PortRecorder).
            played[offset : offset + frames] = before % 2 == 0 and sequence[0] == before

    play_process = SelfEndingProcess(play)
    player.set_process_callback(play_process)
    recorder = PortRecorder(
        [f"{name}:mix_L", f"{name}:mix_R"], 2 * SAMPLE_RATE, end_index, sequence
    )
    player_active = False
    try:
        backend.start()
        player.activate()
        player_active = True
        for c, port in zip("LR", outs, strict=True):
            player.connect(port, f"{name}:in_{c}")
        with recorder:
            time.sleep(0.2)
            start[0] = engine.telemetry.samples_played + 8 * BLOCK  # a cycle yet to come
            wanted, deadline = recorder.buffer.shape[0] + BLOCK, time.monotonic() + 10.0
            while (end_index() or 0) < wanted and time.monotonic() < deadline:
                backend.run_for(0.1)
    finally:
        backend.stop()
        end_and_close(player, play_process, player_active)
    snapshot = engine.telemetry.snapshot()
    delay = engine.latency_samples
    recorded, covered = recorder.buffer, recorder.covered
    n = recorded.shape[0]
    valid = covered[delay:] & played[: n - delay]
    assert valid.mean() >= MIN_COVERED, valid.mean()
    assert np.abs(recorded[:delay][covered[:delay]]).max() < 1e-5
    # The mix of an under-run's block is the dry input, the same as the stems' sum here; so
    # under-runs or not, every frame comes back.
    np.testing.assert_allclose(recorded[delay:][valid], sent[: n - delay][valid], atol=1e-5)
    assert snapshot.underruns <= MOST_UNDERRUNS_PER_BLOCK * snapshot.samples_played / BLOCK


class SilentModel(ChannelSplitModel):
    """Masks of zero: stems that do not sum to the input (a model path that loses the impulse)."""

    def step(self, spectrum: np.ndarray) -> np.ndarray:
        return super().step(spectrum) * 0.0


def test_loopback_goes_through_the_model_path_and_measures_the_engine_latency(
    jack_server,
) -> None:
    # The stems (left, right) sum to the input, so the impulse comes back whole after exactly
    # the engine's latency, through the processor, the masks, the synthesis and the mixer.
    engine = _split_engine(None)
    backend = JackPortsBackend(engine, connect_inputs=False)
    try:
        backend.start()
        assert measure_loopback_latency(backend) == engine.latency_samples
        assert not engine.bypassed  # the model path was measured, and stays selected
        mix_l = backend.client.get_port_by_name(f"{backend.client.name}:mix_L")
        names = [port.name for port in backend.client.get_all_connections(mix_l)]
        assert names == ["system:playback_1"]  # the probe's connections are gone
        # The dummy server has no cable from playback to capture: nothing comes back.
        with pytest.raises(DeviceError, match=r"did not come back through system:playback_1"):
            measure_loopback_latency(
                backend, through=("system:playback_1", "system:capture_1"), timeout=0.3
            )
    finally:
        backend.stop()


def test_the_loopback_fails_when_the_model_path_loses_the_impulse(jack_server) -> None:
    # The same engine with masks of zero: through the model nothing returns, while the dry
    # line (bypass), pre-filled with the latency, still would. The measurement is the model
    # path's, not the dry line's by construction.
    preset = PRESETS["live"]
    engine = Engine(
        StreamProcessor(SilentModel(preset), preset), EngineSettings(SAMPLE_RATE, BLOCK)
    )
    backend = JackPortsBackend(engine, connect_inputs=False)
    try:
        backend.start()
        with pytest.raises(DeviceError, match="did not come back"):
            measure_loopback_latency(backend, timeout=0.5)
        assert measure_loopback_latency(backend, path="bypass") == engine.latency_samples
        assert not engine.bypassed
    finally:
        backend.stop()


def _fill_stems(engine: Engine, backend: JackPortsBackend, n_blocks: int) -> None:
    """The worker's work for the next ``n_blocks`` callbacks, done now on this thread: input
    into the engine's ring, the processor's stems out (what the worker thread would do)."""
    block = np.zeros((BLOCK, engine.n_channels), dtype=np.float32)
    for _ in range(n_blocks):
        engine._in_ring.write(block)
    engine._running = True  # the worker's loop runs while the engine does
    try:
        engine._drain_input()
    finally:
        engine._running = False


def test_the_callback_allocates_no_array_memory_on_the_normal_path(jack_server) -> None:
    # The callback's normal path: the stems are there, mixed with ramped gains, copied to the
    # mix and stem ports. The worker's work is done between measured stretches of callbacks
    # (on this thread, so that only the callback is traced), and every measured callback must
    # take the normal path: no under-run.
    for signal in (_noise(1.0, seed=3), None):  # from a file, and live
        engine = _split_engine(signal)
        backend = JackPortsBackend(engine, connect_outputs=False, connect_inputs=False)
        try:
            # Stand-in port buffers (outside JACK's cycle, where JACK hands out none).
            backend._views = [np.zeros(BLOCK, dtype=np.float32) for _ in backend._views]

            def callbacks(backend: JackPortsBackend = backend) -> None:
                for _ in range(8):
                    backend._copy_and_process()

            for _ in range(5):  # warm-up: first calls fill caches
                _fill_stems(engine, backend, 8)
                callbacks()
                _drop_input(engine)
            engine.set_gain_db(0, -6.0)  # a ramp in progress during the first stretch
            underruns = engine.telemetry.underruns
            stretches = []
            for _ in range(40):
                _fill_stems(engine, backend, 8)
                # one attempt: the stems filled above last one stretch of callbacks
                stretches.append(measure_allocations(callbacks, 1, warm_up=0, attempts=1))
                _drop_input(engine)
        finally:
            backend.stop()
        # Every measured callback found its stems: the normal path, not the dry fallback.
        assert engine.telemetry.underruns == underruns
        assert all(numpy_blocks == 0 for numpy_blocks, _, _ in stretches), stretches
        assert max(abs(growth) for _, growth, _ in stretches) <= 512, stretches
        # One temporary block (256 x 2 float32) would be 2 KiB.
        assert max(transient for _, _, transient in stretches) <= 1536, stretches


def _drop_input(engine: Engine) -> None:
    """What the measured callbacks wrote into the input ring is the next stretch's business."""
    engine._in_ring.skip(engine._in_ring.fill())


def test_sample_rate_other_than_the_servers_is_one_sentence(jack_server) -> None:
    preset = PRESETS["live"].__class__("live48", 2048, 256, 512, sample_rate=48000)
    processor = StreamProcessor(IdentityHopModel(preset), preset)
    engine = Engine(processor, EngineSettings(48000, BLOCK), FileSource(_noise(1, 4), 48000))
    with pytest.raises(DeviceError, match=r"runs at 44100 Hz but the model needs 48000 Hz"):
        JackPortsBackend(engine)


def test_block_size_other_than_the_servers_is_one_sentence(jack_server) -> None:
    engine = _split_engine(_noise(1.0, seed=5), block=512)
    with pytest.raises(DeviceError, match=r"buffer is 256 samples but the engine was built for"):
        JackPortsBackend(engine)


def test_no_server_is_one_sentence() -> None:
    code = (
        "from livestems.realtime.backends.jack import open_client\n"
        "from livestems.realtime.backends.portaudio import DeviceError\n"
        "try:\n"
        "    open_client()\n"
        "except DeviceError as error:\n"
        "    print(error)\n"
    )
    env = {
        **os.environ,
        "JACK_DEFAULT_SERVER": f"livestems-nobody-{uuid.uuid4().hex[:8]}",
        "JACK_NO_START_SERVER": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.stdout.strip() == NO_SERVER, result.stdout + result.stderr
    assert NO_SERVER == (
        "No JACK server is running: start one (for example 'jackd -d dummy' or your JACK "
        "control app)."
    )
    assert "Cannot connect to server" not in result.stderr  # libjack's own lines kept out


LOST_SERVER_SCRIPT = """
import os, signal, sys, time
import numpy as np
from livestems.realtime.backends.portaudio import DeviceError
from livestems.realtime.engine.engine import Engine, EngineSettings
from livestems.realtime.backends.jack import JackPortsBackend, open_client
from livestems.realtime.dsp.presets import PRESETS
from livestems.realtime.engine.processor import IdentityHopModel, StreamProcessor
from livestems.realtime.engine.sources import FileSource

server_pid = int(sys.argv[1])
deadline = time.monotonic() + 15.0
while True:  # until the server answers
    try:
        client = open_client()
        break
    except DeviceError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
preset = PRESETS["live"]
audio = np.zeros((10 * 44100, 2), np.float32)
engine = Engine(
    StreamProcessor(IdentityHopModel(preset), preset),
    EngineSettings(client.samplerate, client.blocksize),
    FileSource(audio, 44100),
)
backend = JackPortsBackend(engine, client=client)
backend.start()
time.sleep(0.5)
os.kill(server_pid, signal.SIGTERM)
started = time.monotonic()
backend.run_for(5.0)
print("noticed after", round(time.monotonic() - started, 2))
print("lost:", backend.lost)
try:
    backend.stop()
except DeviceError as error:
    print("stop:", error)
print("worker stopped:", engine._worker is None)
"""


@pytest.mark.slow
def test_a_server_that_goes_away_stops_the_stream_cleanly() -> None:
    # In a process of its own: libjack (JACK 2) serves one server per process, and this one
    # already has clients on the session's server.
    if not jackd_available():
        pytest.skip("jackd is not installed (Debian package jackd2)")
    server = JackServer("lost", SAMPLE_RATE, BLOCK, wait_for="nothing", set_environment=False)
    server.start()
    try:
        env = {**os.environ, **server.environment}
        assert server.process is not None
        result = subprocess.run(
            [sys.executable, "-c", LOST_SERVER_SCRIPT, str(server.process.pid)],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    finally:
        server.stop()  # SIGTERM: a server that exits cleanly frees its registry slot
        assert server.log_path is not None
        server_log = server.log_path.read_text()
        # The semaphore of our client, which the server could not close after going away.
        for leftover in glob.glob(f"/dev/shm/jack_sem.*_{server.name}_*"):
            os.remove(leftover)
    output = result.stdout + result.stderr + "\njackd: " + server_log
    assert result.returncode == 0, output
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    noticed = float(result.stdout.split("noticed after ")[1].split()[0])
    assert noticed < 2.0, output  # run_for ended well before its 5 s
    assert lines["lost"].startswith("the JACK server shut down"), output
    assert lines["stop"].startswith("The stream stopped: the JACK server shut down"), output
    assert lines["worker stopped"] == "True", output
