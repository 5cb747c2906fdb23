"""The stream processor: the plugin-shaped object that runs audio through a model.

Thread contract: one thread owns a ``StreamProcessor`` and calls ``prepare``, ``reset`` and
``process``: the engine's worker thread when playing, the caller's thread when rendering
offline. It takes no lock and is not shared. ``prepare`` and ``reset`` allocate or clear every
buffer; ``process_into`` keeps no new arrays (``process`` neither, for blocks up to
``max_block``), though numpy's FFTs and the complex mask multiply take temporary working memory
per hop. ``process_sequence_into`` (offline rendering) allocates the spectra and masks of the
whole block on every call. That is why the audio callback never calls into this module: it only
reads the rings the worker fills.

The surface follows an audio plugin's (DESIGN.md, "The stream processor"): ``prepare(sample_rate,
max_block)``, ``reset()``, ``process(block) -> stems`` for any block length, ``latency_samples``
and ``stems``. Internally it re-blocks to the preset's hop and runs a spectral path
(``front_end.py``), chosen at construction to match the model's front end: the full-band
STFT (the default) or the PQMF subband bank with an STFT per band. Per hop: analysis, the
model's masks, synthesis per stem (plus a waveform branch's hop of each stem, for a model that
has one). Its output is delayed by exactly ``latency_samples``: a hop
ends where the path's frame is complete, ``frame_lead`` samples before the full-band hop grid
(so the first hop is short by that many pre-loaded zeros), and the output FIFO is pre-filled
with ``hop - 1 - frame_lead`` zeros, the most a caller can be owed before the next frame is
complete (``hop - 1`` for the STFT, ``hop - K`` for K subbands).

Two ways to run a block, with the same state and the same output (DESIGN.md: "Offline rendering
drives the very same processor"):

- ``process``/``process_into``, the live path: one ``model.step`` per hop.
- ``process_sequence``/``process_sequence_into``, the offline path (``livestems separate``): the
  streaming analysis runs hop by hop over the whole block, one ``model.run`` masks all of its
  complete frames (the model carries its state from call to call exactly as ``step`` does),
  then the streaming synthesis runs hop by hop on the same output timeline (the FIFO keeps
  what is due after the block). A long file rendered in chunks is then one model call per
  chunk instead of one per hop; the samples equal the live path's up to the model's
  batch-versus-step rounding (none for the identity model; the tests allow 1e-4 for
  onnxruntime, which on CPU has given identical samples). The two may be mixed from block to
  block.

The **bleed gate** (a seed thesis's post-process, off by default): per stem, per frame, the
bins whose magnitude is more than a threshold below that frame's peak bin of the stem are
silenced: what leaks of other instruments into a stem is mostly quiet bins. ``set_bleed_gate``
may be called from a control thread (one list-slot store; the worker reads it per hop), and
both ways of running a block apply it alike.

``render_offline`` drives the model's whole-sequence path through the offline transforms of the
spectral path and gives the very same samples, so what is rendered is what was heard.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..dsp.front_end import FrontEnd, StftFrontEnd
from ..dsp.presets import SpectralPreset
from ..dsp.stft import SAMPLE_DTYPE, SPECTRUM_DTYPE
from ..dsp.wiener import wiener_postfilter
from .ring_buffer import AudioRingBuffer


class HopModel(Protocol):
    """What the processor needs of a model: masks from spectra, with state between calls.

    Spectra and masks have the path's feature channels and bins: ``n_channels`` and the
    preset's bins for the STFT path, ``n_bands * n_channels`` (band-major) and the subband
    preset's bins for the subband path. Masks are real (float32) or, for a model with complex
    masks, complex64: the processor multiplies either into the spectra the same way.

    Optional: a model with a waveform branch (the ``hybrid`` family) has ``waveform_hop`` true
    and, after each ``step`` or ``run``, ``last_waveform`` [shape=(n_frames, hop, n_stems *
    n_channels), float32]: per frame, a hop of every stem that the processor adds to the hop the
    frame's synthesis completes. A model without the attribute has no such output.
    """

    @property
    def stems(self) -> tuple[str, ...]: ...

    def reset(self) -> None:
        """Clear all recurrent and convolution state."""

    def step(self, spectrum: np.ndarray) -> np.ndarray:
        """Masks for the newest frame.

        Args:
            spectrum: [shape=(n_feature_channels, n_bins), complex64]

        Returns:
            [shape=(n_stems, n_feature_channels, n_bins), float32 or complex64]
        """
        ...

    def run(self, spectra: np.ndarray) -> np.ndarray:
        """Masks for a sequence of frames, continuing from the current state.

        Args:
            spectra: [shape=(n_frames, n_feature_channels, n_bins), complex64]

        Returns:
            [shape=(n_frames, n_stems, n_feature_channels, n_bins), float32 or complex64]
        """
        ...


class IdentityHopModel:
    """One stem, ``mix``, with masks of one: drives the whole path before any model exists, and
    measures the delay the spectral front end alone adds.

    Args:
        preset: the frame geometry (with no ``path``, the full-band STFT's bins).
        n_channels: audio channels.
        path: the spectral path the masks are for; its feature channels and bins win.
    """

    stems: tuple[str, ...] = ("mix",)

    def __init__(
        self, preset: SpectralPreset, n_channels: int = 2, path: FrontEnd | None = None
    ) -> None:
        if path is None:
            path = StftFrontEnd(preset, n_channels)
        self._masks = np.ones((1, path.n_feature_channels, path.n_bins), dtype=SAMPLE_DTYPE)

    @classmethod
    def for_path(cls, path: FrontEnd) -> IdentityHopModel:
        return cls(path.preset, path.n_channels, path)

    def reset(self) -> None:
        """Stateless: nothing to clear."""

    def step(self, spectrum: np.ndarray) -> np.ndarray:
        return self._masks

    def run(self, spectra: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._masks, (spectra.shape[0], *self._masks.shape))


def _path_for(preset: SpectralPreset, n_channels: int, path: FrontEnd | None) -> FrontEnd:
    """``path``, or the full-band STFT; refuses a path built for another geometry."""
    if path is None:
        return StftFrontEnd(preset, n_channels)
    if path.preset != preset or path.n_channels != n_channels:
        raise ValueError(
            f"The spectral path is for preset {path.preset.name!r} with {path.n_channels} "
            f"channels but the processor runs {preset.name!r} with {n_channels}: build both "
            "from the same model."
        )
    return path


class StreamProcessor:
    """Any block of audio in, the same number of samples of each stem out, ``latency_samples``
    later.

    Args:
        model: the mask model.
        preset: the frame geometry the model was trained for.
        n_channels: audio channels (2: stereo).
        path: the model's front end (``StftFrontEnd`` or ``SubbandFrontEnd``); ``None`` for
            the full-band STFT of ``preset``.
        postfilter: sharpen the masks with the single-frame multichannel Wiener post-filter
            (``dsp/wiener.py``; the torch twin is ``SeparatorNet(..., postfilter=True)``). No
            look-ahead, so no latency; it costs a small linear solve per bin and hop.
    """

    def __init__(
        self,
        model: HopModel,
        preset: SpectralPreset,
        n_channels: int = 2,
        path: FrontEnd | None = None,
        postfilter: bool = False,
    ) -> None:
        self.model = model
        self.postfilter = postfilter
        self.preset = preset
        self.n_channels = n_channels
        self.path = _path_for(preset, n_channels, path)
        self.stems: tuple[str, ...] = tuple(model.stems)
        # A model with a waveform branch (metadata ``waveform_hop``, the hybrid family) also
        # gives, per frame, a hop of every stem [shape=(hop, n_stems * n_channels)] in its
        # ``last_waveform`` [shape=(n_frames, ...)], added to the hop the synthesis completes.
        self._waveform_hop = bool(getattr(model, "waveform_hop", False))
        # Per stem: the bleed gate's threshold as a magnitude ratio to the frame's peak (0: off).
        self._gate = [0.0] * len(self.stems)
        self.sample_rate = 0
        self.max_block = 0

    @classmethod
    def for_model(cls, model: HopModel, postfilter: bool = False) -> StreamProcessor:
        """The processor a model asks for: its front end's preset, channels and bank (an
        ``OnnxHopModel`` or a ``TorchHopModel``: anything with ``front_end()``)."""
        front_end: FrontEnd = model.front_end()  # type: ignore[attr-defined]
        return cls(model, front_end.preset, front_end.n_channels, front_end, postfilter)

    @property
    def latency_samples(self) -> int:
        return self.path.latency_samples

    def set_bleed_gate(self, stem: int, threshold_db: float | None) -> None:
        """Silence the stem's bins more than ``threshold_db`` (negative, e.g. -40) below its
        loudest bin in each frame; ``None`` turns the gate off."""
        if not 0 <= stem < len(self.stems):
            raise ValueError(f"stem index must be in [0, {len(self.stems)}), got {stem}")
        if threshold_db is None:
            self._gate[stem] = 0.0
            return
        if not (np.isfinite(threshold_db) and -120.0 <= threshold_db < 0.0):
            raise ValueError(
                f"The bleed gate's threshold is a level below the stem's peak, -120 to 0 dB, "
                f"got {threshold_db}."
            )
        self._gate[stem] = float(10.0 ** (threshold_db / 20.0))

    def bleed_gate_db(self, stem: int) -> float | None:
        ratio = self._gate[stem]
        return None if ratio == 0.0 else float(20.0 * np.log10(ratio))

    def prepare(self, sample_rate: int, max_block: int) -> None:
        """Allocate every buffer for blocks of up to ``max_block`` samples, then ``reset()``."""
        if sample_rate != self.preset.sample_rate:
            raise ValueError(
                f"The model runs at {self.preset.sample_rate} Hz but the stream is at "
                f"{sample_rate} Hz: resample the audio or open the device at "
                f"{self.preset.sample_rate} Hz."
            )
        if max_block < 1:
            raise ValueError(f"max_block must be at least 1, got {max_block}")
        hop, n_stems, n_channels = self.preset.hop, len(self.stems), self.n_channels
        path = self.path
        self.sample_rate = sample_rate
        self.max_block = max_block
        self._analysis = path.streaming_analysis()
        self._synthesis = path.streaming_synthesis(n_stems)
        self._stem_spectra = np.zeros(
            (n_stems, path.n_feature_channels, path.n_bins), dtype=SPECTRUM_DTYPE
        )
        self._hop_in = np.zeros((hop, n_channels), dtype=SAMPLE_DTYPE)
        self._gate_magnitude = np.zeros((path.n_feature_channels, path.n_bins), np.float32)
        self._gate_keep = np.zeros((path.n_feature_channels, path.n_bins), bool)
        # Output is read right after each input chunk, so the FIFO never holds more than the
        # pre-fill plus one hop.
        self._out_fifo = AudioRingBuffer(2 * hop, n_stems * n_channels)
        self._out = np.zeros((max_block, n_stems * n_channels), dtype=SAMPLE_DTYPE)
        self.reset()

    def reset(self) -> None:
        """Clear all state: analysis and synthesis history, model state, partial hop, output."""
        self._require_prepared()
        self._analysis.reset()
        self._synthesis.reset()
        self.model.reset()
        # The first hop ends frame_lead samples early, where the path's first frame is
        # complete: it starts with that many zeros (samples before the stream began).
        lead = self.path.frame_lead
        self._hop_in[:lead] = 0.0
        self._hop_fill = lead
        self._out_fifo.reset()
        # A frame's hop of output is due from the sample that completes the frame on: the
        # most a caller can be owed before the next frame is complete is hop - 1 - frame_lead.
        self._out_fifo.write_zeros(self.preset.hop - 1 - lead)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Run a block of any length.

        Args:
            block: [shape=(n_samples, n_channels), float32]

        Returns:
            [shape=(n_stems, n_samples, n_channels), float32]. For ``n_samples <= max_block``
            a view of an internal buffer, valid until the next call; longer blocks get a new
            array.
        """
        self._require_prepared()
        n_samples = block.shape[0]
        if n_samples <= self.max_block:
            flat = self._out[:n_samples]
        else:
            flat = np.empty((n_samples, self._out.shape[1]), dtype=SAMPLE_DTYPE)
        self.process_into(block, flat)
        # (n_samples, n_stems * n_channels) -> (n_stems, n_samples, n_channels)
        return flat.reshape(n_samples, len(self.stems), self.n_channels).transpose(1, 0, 2)

    def process_into(self, block: np.ndarray, out: np.ndarray) -> None:
        """Like ``process``, into ``out`` [shape=(n_samples, n_stems * n_channels)], stems
        side by side per sample (stem-major within a sample)."""
        self._require_prepared()
        if block.ndim != 2 or block.shape[1] != self.n_channels:
            raise ValueError(
                f"expected a block of shape (n_samples, {self.n_channels}), got {block.shape}"
            )
        hop = self.preset.hop
        n_samples = block.shape[0]
        done = 0
        while done < n_samples:
            take = min(hop - self._hop_fill, n_samples - done)
            self._hop_in[self._hop_fill : self._hop_fill + take] = block[done : done + take]
            self._hop_fill += take
            if self._hop_fill == hop:
                self._run_hop()
                self._hop_fill = 0
            self._out_fifo.read_into(out[done : done + take])
            done += take

    def process_sequence(self, block: np.ndarray) -> np.ndarray:
        """Like ``process``, through the model's whole-sequence path: one ``model.run`` for
        all the frames the block completes.

        Args:
            block: [shape=(n_samples, n_channels), float32]

        Returns:
            [shape=(n_stems, n_samples, n_channels), float32], a new array.
        """
        self._require_prepared()
        n_samples = block.shape[0]
        flat = np.empty((n_samples, self._out.shape[1]), dtype=SAMPLE_DTYPE)
        self.process_sequence_into(block, flat)
        # (n_samples, n_stems * n_channels) -> (n_stems, n_samples, n_channels)
        return flat.reshape(n_samples, len(self.stems), self.n_channels).transpose(1, 0, 2)

    def process_sequence_into(self, block: np.ndarray, out: np.ndarray) -> None:
        """Like ``process_into``, with one ``model.run`` for the whole block.

        Three passes over the block's hops: streaming analysis of every frame it completes,
        one model call for all of them (state carried from and to the neighbouring calls),
        then streaming synthesis, on the output FIFO's timeline: ``out`` gets the samples
        ``process_into`` would give, and the FIFO keeps the same remainder for the next
        block. Allocates the block's spectra and masks.

        Args:
            block: [shape=(n_samples, n_channels), float32]
            out: [shape=(n_samples, n_stems * n_channels), float32], stem-major per sample.
        """
        self._require_prepared()
        if block.ndim != 2 or block.shape[1] != self.n_channels:
            raise ValueError(
                f"expected a block of shape (n_samples, {self.n_channels}), got {block.shape}"
            )
        hop, path = self.preset.hop, self.path
        n_samples = block.shape[0]
        if out.shape != (n_samples, self._out.shape[1]):
            raise ValueError(f"expected out of shape {(n_samples, self._out.shape[1])}")
        n_frames = (self._hop_fill + n_samples) // hop
        spectra = np.empty((n_frames, path.n_feature_channels, path.n_bins), SPECTRUM_DTYPE)
        # 1. Analysis, hop by hop, re-blocked exactly as process_into does it.
        done, frame = 0, 0
        while done < n_samples:
            take = min(hop - self._hop_fill, n_samples - done)
            self._hop_in[self._hop_fill : self._hop_fill + take] = block[done : done + take]
            self._hop_fill += take
            done += take
            if self._hop_fill == hop:
                spectra[frame] = self._analysis.analyze(self._hop_in)
                frame += 1
                self._hop_fill = 0
        # What earlier blocks left in the FIFO comes first. A block that completes a frame
        # empties it: the FIFO holds hop - 1 - (samples into the next hop), the invariant of
        # process_into, which is fewer than the block's samples.
        done = self._out_fifo.read_into(out)
        if n_frames:
            # 2. One model call for every frame.
            masks = self.model.run(spectra)
            hops = self.model.last_waveform if self._waveform_hop else None  # type: ignore[attr-defined]
            # 3. Synthesis, hop by hop, straight into ``out``; the part of the last hops that
            # is due after this block goes to the FIFO (fewer than hop samples).
            for frame in range(n_frames):
                self._apply_masks(spectra[frame], masks[frame])
                # (hop, n_stems, n_channels) -> (hop, n_stems * n_channels)
                hop_out = self._synthesis.synthesize(self._stem_spectra).reshape(hop, -1)
                if hops is not None:
                    hop_out += hops[frame]
                take = min(hop, n_samples - done)
                out[done : done + take] = hop_out[:take]
                if take < hop:
                    self._out_fifo.write(hop_out[take:])
                done += take
        assert done == n_samples, "the output FIFO fell behind its invariant"

    def _run_hop(self) -> None:
        spectrum = self._analysis.analyze(self._hop_in)
        masks = self.model.step(spectrum)
        self._apply_masks(spectrum, masks)
        hop_out = self._synthesis.synthesize(self._stem_spectra)
        # (hop, n_stems, n_channels) -> (hop, n_stems * n_channels): one FIFO for all stems
        flat = hop_out.reshape(self.preset.hop, -1)
        if self._waveform_hop:
            flat += self.model.last_waveform[0]  # type: ignore[attr-defined]
        self._out_fifo.write(flat)

    def _apply_masks(self, spectrum: np.ndarray, masks: np.ndarray) -> None:
        if self.postfilter:
            wiener_postfilter(spectrum, masks, self._stem_spectra)
        else:
            # Real masks scale each bin; complex ones (complex64, into the complex64 stem
            # spectra) also turn its phase. Neither allocates a result array.
            np.multiply(spectrum, masks, out=self._stem_spectra)
        gate = self._gate
        for stem in range(len(gate)):
            ratio = gate[stem]
            if ratio:
                stem_spectrum = self._stem_spectra[stem]
                magnitude, keep = self._gate_magnitude, self._gate_keep
                np.abs(stem_spectrum, out=magnitude)
                np.greater_equal(magnitude, magnitude.max() * ratio, out=keep)
                np.multiply(stem_spectrum, keep, out=stem_spectrum)

    def _require_prepared(self) -> None:
        if not self.max_block:
            raise RuntimeError("call prepare(sample_rate, max_block) before using the processor")


def render_offline(
    model: HopModel,
    preset: SpectralPreset,
    signal: np.ndarray,
    path: FrontEnd | None = None,
    postfilter: bool = False,
) -> np.ndarray:
    """The processor's output for a whole signal, from the model's sequence path in one call.

    Equal to ``StreamProcessor.process`` over the same signal after ``reset()``, in any
    blocking: sample for sample on the STFT path, to float32 rounding on the subband path.

    Args:
        signal: [shape=(n_samples, n_channels), float32]
        path: as for ``StreamProcessor``; ``None`` for the full-band STFT.
        postfilter: as for ``StreamProcessor``.

    Returns:
        [shape=(n_stems, n_samples, n_channels), float32], delayed by ``latency_samples``.
    """
    path = _path_for(preset, signal.shape[1], path)
    spectra = path.analyze(signal)
    masks = model.run(spectra)
    # (n_frames, n_features, n_bins) -> (n_frames, 1, n_features, n_bins): one mask per stem
    stem_spectra = spectra[:, None] * masks
    if postfilter:
        for frame in range(spectra.shape[0]):
            wiener_postfilter(spectra[frame], masks[frame], stem_spectra[frame])
    stems = path.synthesize(stem_spectra, signal.shape[0])
    if getattr(model, "waveform_hop", False):
        # Frame t's waveform hop leaves with the hop its synthesis completes.
        hops = model.last_waveform  # type: ignore[attr-defined]
        start = preset.hop - 1 - path.frame_lead
        timeline = hops.reshape(-1, *stems.shape[1:])[: max(0, stems.shape[0] - start)]
        stems[start : start + timeline.shape[0]] += timeline
    # (n_samples, n_stems, n_channels) -> (n_stems, n_samples, n_channels)
    return stems.transpose(1, 0, 2)


def measure_latency_samples(
    preset: SpectralPreset, block_size: int = 64, path: FrontEnd | None = None
) -> int:
    """Where a unit impulse comes out of the identity processor, minus where it went in.

    Measured through the streaming path, so that the figure reported to users is the one the
    code produces rather than the one the geometry predicts.

    Args:
        path: the spectral path to measure (``None``: the full-band STFT of ``preset``).
    """
    if path is None:
        path = StftFrontEnd(preset)
    n_channels = path.n_channels
    processor = StreamProcessor(IdentityHopModel.for_path(path), preset, n_channels, path)
    processor.prepare(preset.sample_rate, block_size)
    impulse_at = preset.n_fft + 3 * preset.hop + 17  # off the hop grid, past the first frame
    # Room for the response wherever it comes out, up to a window past the reported delay.
    n_samples = impulse_at + max(2 * preset.n_fft, path.latency_samples + preset.n_fft)
    signal = np.zeros((n_samples, n_channels), dtype=SAMPLE_DTYPE)
    signal[impulse_at] = 1.0
    out = np.empty((n_samples, n_channels), dtype=SAMPLE_DTYPE)
    for start in range(0, n_samples, block_size):
        stop = min(start + block_size, n_samples)
        out[start:stop] = processor.process(signal[start:stop])[0]
    return int(np.argmax(np.abs(out[:, 0]))) - impulse_at
