"""The benchmark's peers: Open-Unmix (``umx``) and HT-Demucs (``htdemucs``), timed on our input.

``livestems bench`` sets our models beside two published separators, measured on the same
input in the same run: their real-time factor (wall seconds / audio seconds, separating the
input offline, torch on the CPU with the thread count our onnxruntime measurement uses) and
the latency their design imposes (what a peer must have heard before it can output anything).
**The weights are random** (``weights="random"``): only speed is measured, and neither peer's
pretrained weights are downloaded (``openunmix.umx(pretrained=True)`` and
``demucs.pretrained`` would fetch them; neither is called). Random weights run the same
operations on tensors of the same shapes, so the time is the trained model's time.

The peers are data (``PEERS``: a ``PeerSpec`` each: the modules to import, a loader), so a peer
whose package is missing or fails to import is reported with ``loaded=False`` and the reason
while the others still run; the tests exercise that path with a spec naming a missing module.
The torch-free benchmark in ``realtime/`` finds ``measure_peers`` through the entry-point group
``livestems.peers`` (``pyproject.toml``), so it never imports torch by name.

Open-Unmix, ``umx`` (package ``openunmix`` 1.3)
    Built by the package's own factory, ``openunmix.umx(pretrained=False)``: four
    ``OpenUnmix`` target networks (``hidden_size=512``, three LSTM layers, 16 kHz bandwidth)
    in its ``Separator`` (torch STFT, ``n_fft`` 4096, hop 1024, centred; one Wiener EM
    iteration over windows of 300 frames), exactly the pretrained ``umx`` model's graph.
    *Latency: the whole song.* The LSTM is bidirectional (``openunmix/model.py:66``,
    ``bidirectional=not unidirectional``, with ``unidirectional=False`` by default at line 38,
    which ``umx_spec`` does not override: ``openunmix/__init__.py:202``), so the first output
    frame depends on the last input frame: ``latency_seconds`` is the input's duration.

    *torchaudio.* ``import openunmix`` imports ``torchaudio`` at the top of
    ``openunmix/utils.py`` (line 6, which the package's ``__init__`` imports) and
    ``openunmix/transforms.py`` (line 4, which ``model.py`` imports), and no torchaudio build
    matches torch 2.13. The umx path never uses it: ``utils.py`` touches it only to resample
    in ``preprocess`` (line 300), which we do not call (the input is at 44.1 kHz), and
    ``transforms.py`` never names it after the import. So ``openunmix`` is imported inside
    ``torchaudio_stub()``: a module finder placed first on ``sys.meta_path`` for the duration
    of that import supplies ``torchaudio`` (and any ``torchaudio.*``) as an explicit stub
    module whose every attribute access raises ``TorchaudioStubError``, naming the attribute.
    ``openunmix``'s modules keep that stub as their global ``torchaudio``, so if the umx
    path ever used torchaudio, the benchmark would stop with that error instead of measuring
    something else. The stub is taken out of ``sys.modules`` when the import is done (a real
    ``torchaudio`` that was loaded before is put back), so nothing else ever sees it.

HT-Demucs, ``htdemucs`` (package ``demucs`` 4.1)
    Its model code (``demucs.htdemucs``, ``demucs.apply`` and what they import) needs no
    torchaudio (nor ``lameenc``, ``sphn``, ``huggingface_hub``, which only audio I/O and
    downloads use). ``HTDemucs`` is built with its constructor defaults except for what the
    pretrained ``htdemucs`` model (signature 955717e8 in ``demucs/remote/htdemucs.yaml``) was
    trained with, since the package ships no yaml with its arguments: the sources, channels
    and rate of the training configuration (``conf/config.yaml`` in the demucs repository:
    drums, bass, other, vocals; 2; 44100), and from its grid (``demucs/grids/mmi.py``)
    ``dconv_mode=3`` (residual branch in encoder and decoder), ``bottom_channels=512`` and
    ``t_dropout=0.02`` (inactive at inference); ``depth=4``, ``t_layers=5``, ``channels=48``,
    ``nfft=4096``, ``dconv_comp=8`` and ``t_hidden_scale=4`` are the defaults and agree with
    that grid and with the layer shapes of the released weights (as demucs.cpp, a C++ port that
    loads them, declares them: 512 bottom channels, a residual branch in every encoder and
    decoder layer, 48 -> 6 channels in its first). ``segment=Fraction(39, 5)``:
    7.8 s, the segment stored in the released model (``HTDemucs.forward`` records the
    training crop's length as ``self.segment``, ``demucs/htdemucs.py:532``; ``demucs
    separate`` reports it as the longest allowed segment, ``demucs/separate.py:137``).
    Separation runs through the package's ``apply_model`` with the defaults of ``demucs
    separate`` and ``demucs.api.Separator``: ``shifts=1`` (one random shift of up to 0.5 s),
    ``split=True``, ``overlap=0.25``.
    *Latency: one segment, 7.8 s (343 980 samples).* ``apply_model`` cuts the input into
    segments of ``segment_length = int(model.samplerate * segment)`` samples
    (``demucs/apply.py:264``) every ``stride = int((1 - overlap) * segment_length)`` samples
    (5.85 s, line 265), ``chunk = TensorChunk(mix, offset, segment_length)`` (line 279), and
    the model pads a shorter chunk to the full training length (``htdemucs.py:534-537``).
    An output sample at the start of a segment is finished only when that whole segment has
    been heard and run, so the look-ahead is ``segment_length``; the cross-fade between
    overlapping segments (a 25 % overlap) adds nothing beyond it, and the random shift only
    moves the cut points by up to 0.5 s. That is ``latency_seconds``, before any compute time.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from ..models.families.torchaudio_stub import torchaudio_stub
from ..realtime.dsp.presets import SAMPLE_RATE

ENTRY_POINT_GROUP = "livestems.peers"
QUICK_SECONDS = 10.0
STEMS = ("drums", "bass", "other", "vocals")
INSTALL_HINT = "the 'bench' extra: ./setup.sh --dev installs it"


@dataclass(frozen=True)
class PeerModel:
    """A loaded peer: a torch module and how to run it on a whole input offline."""

    module: torch.nn.Module
    sample_rate: int
    stems: tuple[str, ...]
    # [shape=(1, n_channels, n_samples)] mix -> [shape=(1, n_stems, n_channels, n_samples)]
    run: Callable[[torch.Tensor], torch.Tensor]
    # the input's duration in seconds -> what must be heard before any output, in seconds
    latency_seconds: Callable[[float], float]

    @property
    def parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.module.parameters())


@dataclass(frozen=True)
class PeerSpec:
    """How to load one peer: the modules it needs (imported first), then its loader."""

    name: str
    description: str
    modules: tuple[str, ...]
    load: Callable[[], PeerModel]
    stub_torchaudio: bool = False


@dataclass(frozen=True)
class Peer:
    """One peer's result. Unknown figures are None (always, when ``loaded`` is False)."""

    name: str
    description: str
    loaded: bool
    reason: str  # why it could not be loaded; "" when it was
    sample_rate: int | None = None
    latency_seconds: float | None = None
    parameters: int | None = None
    real_time_factor: float | None = None
    wall_seconds: float | None = None
    audio_seconds: float | None = None
    threads: int | None = None
    weights: str = "random"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PeerUnavailable(Exception):
    """A peer's package is missing or does not import; the message says which and why."""


def _load_umx() -> PeerModel:
    import openunmix

    separator = openunmix.umx(pretrained=False, device="cpu")  # random weights, no download
    separator.freeze()  # eval mode, no gradients
    return PeerModel(
        module=separator,
        sample_rate=SAMPLE_RATE,
        stems=tuple(separator.target_models),
        run=separator,
        latency_seconds=lambda duration: duration,  # bidirectional LSTM: the whole input
    )


def _load_htdemucs() -> PeerModel:
    from demucs.apply import apply_model
    from demucs.htdemucs import HTDemucs

    model = HTDemucs(
        sources=list(STEMS),
        audio_channels=2,
        samplerate=SAMPLE_RATE,
        segment=Fraction(39, 5),
        dconv_mode=3,
        bottom_channels=512,
        t_dropout=0.02,
    ).eval()
    segment_length = int(model.samplerate * model.segment)  # demucs/apply.py:264

    def run(mix: torch.Tensor) -> torch.Tensor:
        return apply_model(model, mix, shifts=1, split=True, overlap=0.25, progress=False)

    return PeerModel(
        module=model,
        sample_rate=int(model.samplerate),
        stems=tuple(model.sources),
        run=run,
        latency_seconds=lambda duration: segment_length / model.samplerate,
    )


PEERS: tuple[PeerSpec, ...] = (
    PeerSpec(
        name="open-unmix",
        description="Open-Unmix umx (openunmix 1.3): 4 bidirectional-LSTM spectrogram models "
        "and a Wiener filter, offline",
        modules=("openunmix", "openunmix.model"),
        load=_load_umx,
        stub_torchaudio=True,
    ),
    PeerSpec(
        name="ht-demucs",
        description="HT-Demucs htdemucs (demucs 4.1): hybrid transformer, 7.8 s segments with "
        "25% overlap through apply_model, offline",
        modules=("demucs.htdemucs", "demucs.apply"),
        load=_load_htdemucs,
    ),
)


def load_peer(spec: PeerSpec) -> PeerModel:
    """Import a peer's modules and build it; ``PeerUnavailable`` when a module won't import."""
    try:
        if spec.stub_torchaudio:
            with torchaudio_stub():
                for name in spec.modules:
                    importlib.import_module(name)
        else:
            for name in spec.modules:
                importlib.import_module(name)
    except ImportError as error:
        raise PeerUnavailable(
            f"{spec.name} cannot be imported ({error}; {INSTALL_HINT})"
        ) from error
    return spec.load()


def separate(peer: PeerModel, audio: np.ndarray) -> np.ndarray:
    """[shape=(n_samples, 2), float32] -> [shape=(n_stems, n_samples, 2), float32]."""
    # (n_samples, channels) -> (1, channels, n_samples): the peers' batch-first layout
    mix = torch.from_numpy(np.ascontiguousarray(audio.T, dtype=np.float32))[None]
    with torch.inference_mode():
        stems = peer.run(mix)
    # (1, n_stems, channels, n_samples) -> (n_stems, n_samples, channels)
    return stems[0].permute(0, 2, 1).numpy().astype(np.float32, copy=False)


def _measure(spec: PeerSpec, audio: np.ndarray, threads: int) -> Peer:
    try:
        peer = load_peer(spec)
    except PeerUnavailable as error:
        return Peer(name=spec.name, description=spec.description, loaded=False, reason=str(error))
    audio_seconds = audio.shape[0] / SAMPLE_RATE
    started = time.perf_counter()
    separate(peer, audio)
    wall_seconds = time.perf_counter() - started
    return Peer(
        name=spec.name,
        description=spec.description,
        loaded=True,
        reason="",
        sample_rate=peer.sample_rate,
        latency_seconds=peer.latency_seconds(audio_seconds),
        parameters=peer.parameters,
        real_time_factor=wall_seconds / audio_seconds,
        wall_seconds=wall_seconds,
        audio_seconds=audio_seconds,
        threads=threads,
    )


def measure_peers(
    audio: np.ndarray,
    quick: bool,
    threads: int = 1,
    peers: Sequence[PeerSpec] = PEERS,
) -> list[Peer]:
    """Time each peer separating ``audio`` [shape=(n_samples, 2), float32, 44.1 kHz] offline.

    ``quick`` keeps only the first ``QUICK_SECONDS`` (10 s) of it. torch runs on ``threads``
    threads (the onnxruntime measurement's count; restored afterwards), one timed run each,
    no warm-up (a second run of either peer on 10 s differs from the first by under 2 %: the
    one-off costs are milliseconds against seconds). A peer that cannot be imported comes back
    with ``loaded=False`` and why.
    """
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise ValueError(f"the peers take stereo audio (n_samples, 2), not {audio.shape}")
    if quick:
        audio = audio[: round(QUICK_SECONDS * SAMPLE_RATE)]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return [_measure(spec, audio, threads) for spec in peers]
    finally:
        torch.set_num_threads(previous_threads)


def main(argv: list[str] | None = None) -> None:
    from ..realtime.io.generated_song import generated_song

    parser = argparse.ArgumentParser(description="Time the peers on a generated song.")
    parser.add_argument("--seconds", type=float, default=30.0, help="song length (default 30)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_SECONDS:g} s")
    args = parser.parse_args(argv)
    song = generated_song(args.seconds, SAMPLE_RATE)
    print(f"{'peer':<12} {'params':>11} {'latency s':>10} {'audio s':>8} {'wall s':>8} {'RTF':>7}")
    for peer in measure_peers(song, args.quick, threads=args.threads):
        if not peer.loaded:
            print(f"{peer.name:<12} not loaded: {peer.reason}")
            continue
        print(
            f"{peer.name:<12} {peer.parameters:>11,} {peer.latency_seconds:>10.2f} "
            f"{peer.audio_seconds:>8.1f} {peer.wall_seconds:>8.2f} {peer.real_time_factor:>7.3f}"
        )
    print("weights: random (speed only)")


if __name__ == "__main__":
    main()
