"""Training: ``livestems train``, for every model family, on MUSDB18, folders of stems and
synthetic songs.

What one run does (DESIGN.md, "Training and evaluation"):

- Data: training tracks held in memory, drawn as augmented excerpts (``training_data``);
  validation on whole held-out tracks (MUSDB's validation list, or synthetic songs whose seeds
  training never sees).
- Loss, in the magnitude domain of the model's own front end (the synthesis is not run in
  training, as in the CWS paper): ``l1`` is the mean absolute error of each stem's magnitude
  plus ``conservation_weight`` times the conservation loss, the error of the stems' magnitudes
  summed against the mixture's (the CWS paper's Eq. 7-8: it ties the stems together when the
  masks are not normalised; with softmax or ratio masks it is zero by construction); ``mse``
  is Open-Unmix's mean squared error of the magnitudes.
- Adam; the learning rate decays by ``lr_decay_factor`` when the validation loss has not
  improved for ``lr_decay_patience`` epochs; training stops after ``early_stop_patience``
  epochs without improvement. An epoch is ``batches_per_epoch`` batches.
- The run folder holds ``config.json`` (the whole run's configuration), ``last.pt`` (model,
  optimiser, scheduler and loop position, written atomically every ``checkpoint_every``
  batches and at each epoch's end), ``best.pt`` (the model at its best validation loss, the
  file to export) and ``log.jsonl`` (one JSON object per epoch).
- ``--resume`` continues from ``last.pt`` exactly where it stopped: batches are a pure function
  of (seed, epoch, batch index, rank), and the torch RNG state (dropout) is saved with the
  weights, so a run killed and resumed ends with the very weights of a run never killed (a
  test checks this bit for bit on the CPU).
- Data-parallel: started by ``torchrun --nproc_per_node=N -m livestems.models.training.command ...``
  each process trains on its own batches (``rank`` in the seed) and gradients are averaged;
  only rank 0 validates, logs and writes files. CUDA is used when there is a GPU.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...realtime.errors import UserError
from ...realtime.io.atomic_file import atomic_write
from ..data.datasets import STEMS, Track, load_tracks, musdb_tracks, stem_folder_tracks
from ..data.spectral_data import SpectralBatch, SpectralSampler
from ..data.training_data import Batch, ExcerptSampler, SamplingConfig, whole_track_batch
from ..families.checkpoint import load_checkpoint, save_checkpoint
from ..families.config import ConfigError
from ..families.from_onnx import separator_from_onnx
from ..families.registry import get_family
from ..families.separator import SeparatorNet

LOSSES = ("l1", "mse")
DATA_PATHS = ("spectral", "waveform")
LR_SCHEDULES = ("plateau", "cosine")
SELECT_BY = ("loss", "sdr")
# Synthetic validation songs take seeds from here on; training takes seeds 0, 1, ...
SYNTHETIC_VALID_FIRST_SEED = 1_000_000


def _names(keys: Sequence[str]) -> str:
    """Keys as one line, whatever they hold (a key with a line break stays on the line)."""
    return ", ".join(str(key).encode("unicode_escape").decode("ascii") for key in keys)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; saved as the run folder's ``config.json``.

    Attributes:
        family, size, preset: the model (``livestems.families``), its named size and preset.
        model: configuration fields that override the size's (e.g. ``{"hidden_size": 128}``).
        musdb: a MUSDB18 or MUSDB18-HQ folder; its train split trains, its valid split
            validates.
        folders: folders of songs (one sub-folder per song, one file per stem) added to the
            training data.
        synthetic_songs: synthetic songs added to the training data (seeds 0, 1, ...).
        synthetic_valid_songs: synthetic songs to validate on when there is no MUSDB (seeds
            from 1,000,000 on, which training never draws).
        synthetic_duration_s: length of each synthetic song (procedural or from MIDI).
        midi_songs: songs rendered from real compositions (``synth_midi``: MIDI files that
            Debian packages ship, one stem per General MIDI family group) added to the
            training data (seeds 0, 1, ...).
        midi_stems: the stems that the songs from MIDI files lend (empty: all). The others are
            silent in those songs, so the silence-aware draw takes them from the other songs:
            ``["vocals", "other"]`` trains on MIDI songs' tunes and chords over real songs'
            drums and bass, in cross-song remixes (a whole-song draw needs every stem loud, so
            it keeps to songs that lend them all).
        valid_tracks: validate on at most this many tracks (0: all).
        train_tracks: train on at most this many of MUSDB's train-split songs (0: all), drawn
            by a fixed shuffle (seed 0, not ``seed``), so that a smaller draw is part of every
            larger one: a learning curve over the number of songs.
        sampling: the excerpts and augmentations (``training_data.SamplingConfig``).
        batch_size, batches_per_epoch, epochs: the loop.
        loss: ``l1`` (plus conservation) or ``mse``.
        lr, weight_decay, lr_decay_patience, lr_decay_factor, early_stop_patience: Adam and
            its schedule, counted in epochs.
        seed: seeds the weights and every batch.
        checkpoint_every: write ``last.pt`` every this many batches (and at each epoch's end).
        threads: torch CPU threads (0: torch's default).
        device: ``auto`` (CUDA when there is one), ``cpu`` or ``cuda``.
        fit_input_statistics: set the network's input mean and scale from the training data
            (Open-Unmix's scaler), for families that have them.
        data_path: ``spectral`` (every song analysed once; batches are scaled spectra:
            ``spectral_data``) or ``waveform`` (every batch's excerpts analysed again, with the
            conservation term computed even where it is zero by construction: the path as it
            was, kept for ``train_benchmark``'s comparison).
        deterministic: torch's deterministic algorithms (slower where they differ; the CPU
            loop is reproducible without them).
        compile: run the loss through ``torch.compile`` (fused kernels; a minute or two of
            compiling first).
        ema_decay: keep an exponential moving average of the weights with this decay per batch
            (0: none); validation, ``best.pt`` and the export use the average.
        ema_ramp: ramp the average's decay up from 0.1 over the first batches, so that it is
            not held to random initial weights; ``false`` holds it at ``ema_decay`` from the
            first batch, for a run whose ``init`` weights are already trained (the ramp hands
            the average to the first batches' weights, where the trained ones are the better
            start).
        freeze_norms: batch norms keep the running statistics they start with (``init``'s) and
            normalise with them in training too, their scales and shifts still learning.
            Estimated again as training estimates them (momentum 0.1 over augmented batches),
            without any weight change, they cost ``ensemble-live`` 0.12 dB of validation SDR
            (session 16), which every continuation first had to win back.
        lr_schedule: ``plateau`` (decay by ``lr_decay_factor`` when validation stalls) or
            ``cosine`` (linear warm-up over ``warmup_batches``, then a cosine to
            ``lr * min_lr_ratio`` at the last batch).
        complex_weight: weight of a complex-spectrum loss (the estimate's complex spectrum, the
            mask times the mixture's, against the target's) added to the magnitude loss.
        mrstft_weight: weight of a multi-resolution STFT loss on the synthesised waveforms
            (spectral convergence plus log-magnitude distance at three resolutions).
        sdr_weight: weight of a negative-SDR loss on the synthesised waveforms (in dB, per
            stem and excerpt: ``waveform_sdr_loss``), the measure the scores use, where a
            magnitude loss rewards sharp masks that BSSEval counts as artefacts.
        init: a checkpoint whose weights start this run (fine-tuning; the same family, size
            and preset, or a model that adds residual branches to it, such as a ``cws``
            model's bottleneck LSTM: ``load_initial_weights``), or an exported ``lstm`` model
            (``.onnx``), rebuilt in torch.
        time_limit_s: wall-clock seconds this call of ``train`` may take (0: no limit), for a
            machine lent for a fixed time. After two epochs the run's epochs are cut to those
            that fit at the second epoch's pace (validation included; the first carries the
            warm-up), once, and kept in
            ``last.pt`` (``LoopState.planned_epochs``), so that the cosine schedule still ends at
            the last batch trained; an epoch that would then still overrun is not started.
        select_by: what ``best.pt`` is the best by: ``loss`` (the validation loss, a magnitude
            L1 or MSE) or ``sdr`` (the validation SDR, ``validation_sdr``: the measure the
            scores use, which the loss can disagree with: a lower L1 from sharper masks with
            more artefacts). With ``sdr`` every epoch's log also has ``valid_sdr``; the
            learning-rate plateau and early stopping still follow the loss.
    """

    family: str = "lstm"
    size: str = "default"
    preset: str = "live"
    model: dict[str, Any] = field(default_factory=dict)
    musdb: str | None = None
    folders: tuple[str, ...] = ()
    synthetic_songs: int = 0
    synthetic_valid_songs: int = 4
    synthetic_duration_s: float = 10.0
    midi_songs: int = 0
    midi_stems: tuple[str, ...] = ()
    valid_tracks: int = 0
    train_tracks: int = 0
    sampling: SamplingConfig = SamplingConfig()
    batch_size: int = 16
    batches_per_epoch: int = 20
    epochs: int = 1000
    loss: str = "l1"
    conservation_weight: float = 1.0
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_decay_patience: int = 10
    lr_decay_factor: float = 0.3
    early_stop_patience: int = 30
    seed: int = 42
    checkpoint_every: int = 20
    threads: int = 0
    device: str = "auto"
    fit_input_statistics: bool = True
    data_path: str = "spectral"
    deterministic: bool = False
    compile: bool = False
    ema_decay: float = 0.0
    ema_ramp: bool = True
    freeze_norms: bool = False
    lr_schedule: str = "plateau"
    warmup_batches: int = 0
    min_lr_ratio: float = 0.01
    complex_weight: float = 0.0
    mrstft_weight: float = 0.0
    sdr_weight: float = 0.0
    init: str | None = None
    select_by: str = "loss"
    time_limit_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.ema_ramp and (self.init is None or not self.ema_decay):
            raise ConfigError(
                "ema_ramp false holds the weight average at ema_decay from the first batch: it "
                "needs ema_decay and init (trained weights to start the average from)."
            )
        if self.midi_stems and self.midi_songs <= 0:
            raise ConfigError(
                "midi_stems picks the stems that songs from MIDI files lend: it needs midi_songs."
            )
        if self.freeze_norms and self.init is None:
            raise ConfigError(
                "freeze_norms keeps the batch norms' statistics the run starts with: it needs "
                "init (trained weights whose statistics to keep)."
            )
        if self.select_by not in SELECT_BY:
            raise ConfigError(
                f"Unknown select_by {self.select_by!r}: choose one of {', '.join(SELECT_BY)}."
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"Unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}.")
        if self.data_path not in DATA_PATHS:
            raise ConfigError(
                f"Unknown data_path {self.data_path!r}: choose one of {', '.join(DATA_PATHS)}."
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"Unknown lr_schedule {self.lr_schedule!r}: choose one of "
                f"{', '.join(LR_SCHEDULES)}."
            )
        if not isinstance(self.model, dict):
            raise ConfigError("model must be a table of model settings.")
        try:
            get_family(self.family).config(self.size, preset=self.preset, **self.model)
        except TypeError as error:
            unknown = str(error).split("argument")[-1].strip(" '")
            raise ConfigError(
                f"The {self.family} model has no setting {unknown!r}: check the model table."
            ) from None
        if not isinstance(self.sampling, SamplingConfig):
            raise ConfigError("sampling must be a table of sampling settings.")
        if self.data_path == "waveform" and self.sampling.spectral_only:
            raise ConfigError(
                f"The {', '.join(self.sampling.spectral_only)} augmentation(s) need data_path "
                "spectral."
            )
        for name, low, high in (
            ("lr", 1e-9, 10.0),
            ("weight_decay", 0.0, 1.0),
            ("lr_decay_factor", 1e-6, 1.0),
            ("ema_decay", 0.0, 0.999999),
            ("min_lr_ratio", 0.0, 1.0),
            ("complex_weight", 0.0, 1e3),
            ("mrstft_weight", 0.0, 1e3),
            ("sdr_weight", 0.0, 1e3),
            ("conservation_weight", 0.0, 1e3),
            ("synthetic_duration_s", 0.5, 3600.0),
            ("time_limit_s", 0.0, 1e7),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (low <= value <= high)
            ):
                raise ConfigError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}.")
        for name in (
            "warmup_batches",
            "threads",
            "lr_decay_patience",
            "early_stop_patience",
            "synthetic_songs",
            "valid_tracks",
            "train_tracks",
            "seed",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be a whole number of at least 0, got {value!r}.")
        if (
            self.musdb is None
            and not self.folders
            and self.synthetic_songs <= 0
            and self.midi_songs <= 0
        ):
            raise ConfigError(
                "No training data: give --musdb PATH, --folder PATH, --synthetic N or "
                "--midi-songs N."
            )
        for name in ("batch_size", "batches_per_epoch", "epochs", "checkpoint_every"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ConfigError(f"{name} must be a whole number, got {getattr(self, name)!r}.")
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"Unknown device {self.device!r}: choose auto, cpu or cuda.")

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["folders"] = list(self.folders)
        values["midi_stems"] = list(self.midi_stems)
        for name in ("gain_range", "width_range", "limiter_push_db"):
            values["sampling"][name] = list(getattr(self.sampling, name))
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown training setting(s): {_names(unknown)}.")
        values = dict(values)
        if "sampling" in values:
            if not isinstance(values["sampling"], dict):
                raise ConfigError("sampling must be a table of sampling settings.")
            sampling = dict(values["sampling"])
            sampling_known = {f.name for f in dataclasses.fields(SamplingConfig)}
            bad = sorted(set(sampling) - sampling_known)
            if bad:
                raise ConfigError(f"Unknown sampling setting(s): {_names(bad)}.")
            for name in ("gain_range", "width_range", "limiter_push_db"):
                if name in sampling:
                    if not isinstance(sampling[name], (list, tuple)):
                        raise ConfigError(f"sampling {name} must be a pair of numbers.")
                    sampling[name] = tuple(sampling[name])
            values["sampling"] = SamplingConfig(**sampling)
        if "midi_stems" in values:
            stems = values["midi_stems"]
            if (
                not isinstance(stems, (list, tuple))
                or not all(isinstance(stem, str) for stem in stems)
                or not set(stems) <= set(STEMS)
            ):
                raise ConfigError(
                    f"midi_stems must be a list of stems among {_names(list(STEMS))}, "
                    f"got {stems!r}."
                )
            values["midi_stems"] = tuple(stems)
        if "folders" in values:
            folders = values["folders"]
            if not isinstance(folders, (list, tuple)) or not all(
                isinstance(folder, str) for folder in folders
            ):
                raise ConfigError("folders must be a list of folder paths.")
            values["folders"] = tuple(folders)
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigError(f"The training configuration does not fit: {error}.") from error

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """A JSON (``.json``) or TOML (``.toml``) file of the fields above."""
        path = Path(path)
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not a text file of training settings.") from None
        except OSError as error:
            raise ConfigError(f"Cannot read the training configuration {path}: {error}.") from None
        try:
            if path.suffix == ".toml":
                import tomllib

                values = tomllib.loads(text)
            else:
                values = json.loads(text)
        except ValueError as error:
            raise ConfigError(
                f"{path} is not valid {path.suffix[1:] or 'JSON'}: {error}."
            ) from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must hold a table of training settings.")
        return cls.from_dict(values)


# -- data ---------------------------------------------------------------------------------------


def load_training_data(config: TrainConfig) -> tuple[list[Track], list[Track]]:
    """(training tracks, validation tracks), decoded into memory."""
    train: list[Track] = []
    valid: list[Track] = []
    if config.musdb is not None:
        refs = musdb_tracks(config.musdb, "train")
        if 0 < config.train_tracks < len(refs):
            # the shuffle does not follow ``seed``: the draws of a learning curve are nested
            order = np.random.default_rng(0).permutation(len(refs))
            refs = [refs[i] for i in sorted(order[: config.train_tracks])]
        train += load_tracks(refs)
        valid += load_tracks(musdb_tracks(config.musdb, "valid"))
    for folder in config.folders:
        # a user's folder may hold a broken song: it is named and the rest still train
        train += load_tracks(stem_folder_tracks(folder), skip_broken=True)
    if config.synthetic_songs > 0:
        from ..synth.procedural import render_songs

        duration = config.synthetic_duration_s
        train += render_songs(range(config.synthetic_songs), duration)
        if not valid:
            first = SYNTHETIC_VALID_FIRST_SEED
            valid += render_songs(range(first, first + config.synthetic_valid_songs), duration)
    if config.midi_songs > 0:
        from ..synth.midi import midi_tracks

        duration = config.synthetic_duration_s
        train += [
            lending(track, config.midi_stems)
            for track in midi_tracks(config.midi_songs, 0, duration)
        ]
        if not valid:
            first = SYNTHETIC_VALID_FIRST_SEED
            valid += midi_tracks(config.synthetic_valid_songs, first, duration)
    if not valid:
        # folders only: hold out the last song (and say so in the log)
        if len(train) < 2:
            raise ConfigError("Training needs at least two songs: one is held out to validate.")
        valid.append(train.pop())
    if config.valid_tracks > 0:
        valid = valid[: config.valid_tracks]
    return train, valid


def lending(track: Track, stems: Sequence[str]) -> Track:
    """``track`` with every stem but ``stems`` silent (all of them kept when ``stems`` is
    empty); the mixture is the sum of what is left, as it is of every rendered song."""
    if not stems:
        return track
    kept = {
        name: audio if name in stems else np.zeros_like(audio)
        for name, audio in track.stems.items()
    }
    mixture = np.stack(list(kept.values())).sum(axis=0, dtype=np.float32)
    return dataclasses.replace(track, stems=kept, mixture=mixture)


# -- losses -------------------------------------------------------------------------------------


def batch_spectra(
    model: SeparatorNet, batch: Batch | SpectralBatch
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mixture, targets) complex spectra in the model's front end: a spectral batch's own, or a
    waveform batch's analysed.

    Returns:
        [shape=(batch, n_frames, n_feature_channels, n_bins)] and [shape=(batch, n_frames,
        n_stems, n_feature_channels, n_bins)].
    """
    if isinstance(batch, SpectralBatch):
        return batch.mixture, batch.targets
    front_end = model.front_end
    mixture = front_end.analyze(batch.mixture)
    n_batch, n_stems = batch.targets.shape[:2]
    targets = front_end.analyze(batch.targets.flatten(0, 1))
    return mixture, targets.unflatten(0, (n_batch, n_stems)).transpose(1, 2)


def _stft_magnitude(signal: torch.Tensor, n_fft: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=signal.device, dtype=signal.dtype)
    spectra = torch.stft(
        signal.flatten(0, -2), n_fft, n_fft // 4, window=window, return_complex=True
    )
    return spectra.abs()


def multi_resolution_stft_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spectral convergence plus mean log-magnitude distance, averaged over three resolutions
    (Yamamoto et al., Parallel WaveGAN, 2020). Waveforms of any leading shape."""
    total = estimate.new_zeros(())
    resolutions = (512, 1024, 2048)
    for n_fft in resolutions:
        estimated, wanted = _stft_magnitude(estimate, n_fft), _stft_magnitude(target, n_fft)
        convergence = torch.linalg.vector_norm(wanted - estimated) / torch.linalg.vector_norm(
            wanted
        ).clamp_min(1e-7)
        log_distance = torch.mean(
            torch.abs(torch.log(wanted.clamp_min(1e-5)) - torch.log(estimated.clamp_min(1e-5)))
        )
        total = total + convergence + log_distance
    return total / len(resolutions)


def waveform_sdr_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Minus the SDR in dB, ``10 log10(|s - s_hat|^2 / |s|^2)``, per stem of each excerpt
    (both channels together), averaged. In dB every stem counts alike whatever its level, as
    in the scores (a quiet bass's error weighs as a loud drum kit's); the small floors keep a
    near-silent stem finite. Waveforms [shape=(batch, n_stems, n_channels, n_samples)]."""
    error = torch.sum((target - estimate) ** 2, dim=(-2, -1))
    signal = torch.sum(target**2, dim=(-2, -1))
    return torch.mean(10 * torch.log10((error + 1e-6) / (signal + 1e-6)))


def loss_value(
    model: SeparatorNet, batch: Batch | SpectralBatch, config: TrainConfig, training: bool = True
) -> torch.Tensor:
    """The training objective; with ``training=False`` only its magnitude part (validation
    compares runs whose extra terms differ)."""
    mixture_spectra, target_spectra = batch_spectra(model, batch)
    if getattr(model.net, "waveform_output", False):
        return _waveform_branch_loss(model, mixture_spectra, target_spectra, config, training)
    mixture = mixture_spectra.abs()
    masks = model.masks(mixture_spectra)
    # |m x| = |m| |x|: a complex mask's magnitude is what the magnitude loss can judge.
    estimates = (masks.abs() if masks.is_complex() else masks) * mixture.unsqueeze(2)
    targets = target_spectra.abs()
    if config.loss == "mse":
        loss = torch.mean((estimates - targets) ** 2)
    else:
        loss = torch.mean(torch.abs(estimates - targets))
    # Normalised masks (softmax, ratio) make the stems sum to the mix, so the conservation term
    # is zero but for rounding; the waveform path computes it anyway, as it always did.
    normalised = model.config.mask != "sigmoid" and not isinstance(batch, Batch)
    if config.loss == "l1" and config.conservation_weight and not normalised:
        conservation = torch.mean(torch.abs(estimates.sum(dim=2) - mixture))
        loss = loss + config.conservation_weight * conservation
    if training and (config.complex_weight or config.mrstft_weight or config.sdr_weight):
        estimate_spectra = masks * mixture_spectra.unsqueeze(2)
        if config.complex_weight:
            loss = loss + config.complex_weight * torch.mean(
                torch.abs(estimate_spectra - target_spectra)
            )
        if config.mrstft_weight or config.sdr_weight:
            n_samples = mixture_spectra.shape[1] * model.front_end.hop
            estimate = model.front_end.synthesize(estimate_spectra, n_samples)
            target = model.front_end.synthesize(target_spectra, n_samples)
            if config.mrstft_weight:
                loss = loss + config.mrstft_weight * multi_resolution_stft_loss(estimate, target)
            if config.sdr_weight:
                loss = loss + config.sdr_weight * waveform_sdr_loss(estimate, target)
    return loss


def _waveform_branch_loss(
    model: SeparatorNet,
    mixture_spectra: torch.Tensor,
    target_spectra: torch.Tensor,
    config: TrainConfig,
    training: bool,
) -> torch.Tensor:
    """The objective of a network with a waveform branch (``hybrid``): its stems are the masked
    spectra's synthesis plus the branch's hops, so the loss is taken on that sum, analysed again
    (the masks alone would leave the branch untrained). The estimate and the targets pass
    through the same synthesis and the same stream timeline, so their frames line up; the
    magnitude L1 (or MSE) is then the same measure as every other family's, and validation
    compares them fairly."""
    front_end = model.front_end
    n_samples = mixture_spectra.shape[1] * front_end.hop
    # [shape=(batch, n_stems, n_channels, n_samples)] on the stream's timeline
    estimate = model.separate_spectra(mixture_spectra, n_samples)
    target = front_end.synthesize(target_spectra, n_samples)

    def magnitudes(stems: torch.Tensor) -> torch.Tensor:
        return front_end.analyze(stems.flatten(0, 1)).abs()

    estimates, targets = magnitudes(estimate), magnitudes(target)
    if config.loss == "mse":
        loss = torch.mean((estimates - targets) ** 2)
    else:
        loss = torch.mean(torch.abs(estimates - targets))
    if training and config.complex_weight:
        estimate_spectra = front_end.analyze(estimate.flatten(0, 1))
        target_again = front_end.analyze(target.flatten(0, 1))
        loss = loss + config.complex_weight * torch.mean(torch.abs(estimate_spectra - target_again))
    if training and config.mrstft_weight:
        loss = loss + config.mrstft_weight * multi_resolution_stft_loss(estimate, target)
    if training and config.sdr_weight:
        loss = loss + config.sdr_weight * waveform_sdr_loss(estimate, target)
    return loss


@torch.no_grad()
def fit_input_statistics(
    model: SeparatorNet,
    sampler: ExcerptSampler | SpectralSampler,
    seed: int,
    n_batches: int = 4,
) -> int:
    """Set every ``input_mean`` and ``input_scale`` in the network to centre and scale each input
    bin over training excerpts (Open-Unmix's scaler); returns how many pairs were set."""
    pairs = []
    for module in model.net.modules():
        mean, scale = getattr(module, "input_mean", None), getattr(module, "input_scale", None)
        if isinstance(mean, nn.Parameter) and isinstance(scale, nn.Parameter):
            pairs.append((mean, scale))
    if not pairs:
        return 0
    frames = []
    for index in range(n_batches):
        # an epoch number training never reaches: these excerpts are drawn for statistics only
        batch = sampler.batch(seed, epoch=2**31 - 1, index=index, batch_size=4)
        magnitude = batch_spectra(model, batch)[0].abs()
        frames.append(magnitude.reshape(-1, magnitude.shape[-1]))
    stacked = torch.cat(frames)
    for mean, scale in pairs:
        n_in = mean.shape[0]
        mean.copy_(-stacked[:, :n_in].mean(dim=0))
        scale.copy_(1.0 / stacked[:, :n_in].std(dim=0).clamp_min(1e-4))
    return len(pairs)


# -- the loop -----------------------------------------------------------------------------------


@dataclass
class LoopState:
    """Where a run is: saved in ``last.pt`` so that ``--resume`` continues exactly here."""

    epoch: int = 0
    batch: int = 0  # the next batch of ``epoch`` to train
    step: int = 0  # batches trained in all
    epoch_loss_sum: float = 0.0
    best_valid_loss: float = math.inf
    best_valid_sdr: float = -math.inf  # with select_by "sdr"
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    stopped_early: bool = False
    planned_epochs: int = 0  # epochs cut to fit ``time_limit_s`` (0: ``config.epochs``)


class _Distributed:
    """torchrun's environment: rank, world size; a no-op for a single process."""

    def __init__(self, device: torch.device) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world_size > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def average_gradients(self, model: nn.Module) -> None:
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for parameter in model.parameters():
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad)
                parameter.grad /= self.world_size

    def broadcast_parameters(self, model: nn.Module) -> None:
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)

    def close(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the system.

    A training step allocates and frees tensors of a hundred MB and more (masks and magnitudes of
    every stem, channel, bin and frame). glibc serves allocations above 32 MB with ``mmap`` and
    unmaps them on ``free``, so every step faults in fresh zeroed pages: measured on a live-preset
    lstm step here, system time fell from 11 s to 3 s and the step from 25-35 s to 14-18 s with
    this. ``False`` where the C library is not glibc (nothing is changed then)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if sys.platform != "linux" or name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4  # <malloc.h>
    ok = mallopt(m_mmap_max, 0) == 1  # never mmap: the heap is reused
    ok &= mallopt(m_trim_threshold, 2**31 - 1) == 1  # never shrink the heap
    ok &= mallopt(m_top_pad, 256 * 2**20) == 1  # grow it in large steps
    return bool(ok)


def _device(name: str, rank: int) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for, but torch sees no CUDA GPU here.")
        # TensorFloat-32 in matrix products and convolutions: several times the float32 rate
        # on the GPUs that have it, for a 10-bit mantissa in the products (torch's own advice
        # for training; not measured here against float32)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


def batch_norms(model: nn.Module) -> list[nn.Module]:
    """The model's batch norms: the layers that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def set_training_mode(model: SeparatorNet, freeze_norms: bool) -> None:
    """Training mode, with the batch norms in evaluation mode where ``freeze_norms`` asks
    (they then normalise with their running statistics and leave them as they are)."""
    model.train()
    if freeze_norms:
        for norm in batch_norms(model):
            norm.eval()


@contextmanager
def evaluating(model: SeparatorNet) -> Iterator[None]:
    """Evaluation mode for the block, then every module's mode as it was (frozen norms too)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def build_model(config: TrainConfig) -> SeparatorNet:
    torch.manual_seed(config.seed)
    family = get_family(config.family)
    return SeparatorNet(family.config(config.size, preset=config.preset, **config.model))


@torch.no_grad()
def validation_sdr(model: SeparatorNet, tracks: Sequence[Track]) -> float:
    """The validation tracks' SDR in dB, aggregated as the scores aggregate BSSEval's: per stem
    and track the median over 1 s frames, then the median over tracks, then the mean over stems.
    The SDR is the plain ratio ``10 log10(|s|^2 / |s - s_hat|^2)`` of each frame (both
    channels), without BSSEval's distortion filters: seconds for all tracks rather than minutes,
    and it moves with BSSEval's SDR. Frames where the reference is silent are left out."""
    from ..evaluation.evaluate import SILENT_MEAN_SQUARE, torch_estimator

    device = next(model.parameters()).device
    estimate = torch_estimator(model, str(device))
    per_stem: dict[str, list[float]] = {}
    with evaluating(model):
        for track in tracks:
            estimates = estimate(track)
            window = track.sample_rate
            for stem, reference in track.stems.items():
                n_frames = len(reference) // window
                frames = reference[: n_frames * window].reshape(n_frames, -1).astype(np.float64)
                guess = estimates[stem][: n_frames * window].reshape(n_frames, -1)
                signal = np.mean(frames**2, axis=1)
                error = np.mean((frames - guess) ** 2, axis=1) + 1e-12
                kept = signal > SILENT_MEAN_SQUARE
                if kept.any():
                    sdr = 10 * np.log10(signal[kept] / error[kept])
                    per_stem.setdefault(stem, []).append(float(np.median(sdr)))
    return float(np.mean([np.median(values) for values in per_stem.values()]))


def validation_loss(model: SeparatorNet, tracks: Sequence[Track], config: TrainConfig) -> float:
    device = next(model.parameters()).device
    with evaluating(model):
        losses = [
            loss_value(model, whole_track_batch(t).to(device), config, training=False).item()
            for t in tracks
        ]
    return float(sum(losses) / len(losses))


class Progress:
    """A progress bar with the running loss and speed (tqdm, on a terminal), and one line per
    epoch everywhere (a log file or CI has no use for carriage returns)."""

    def __init__(self, enabled: bool, total: int, initial: int, epoch: int) -> None:
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=f"epoch {epoch}", unit="batch", leave=False
            )

    def update(self, loss: float, samples_per_s: float) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{samples_per_s:.1f}")
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class WeightAverage:
    """An exponential moving average of a model's weights (Polyak averaging), the model that
    validates and is exported when ``ema_decay`` is set. The decay ramps up from 0.1 over the
    first batches (``min(decay, (1 + n) / (10 + n))``), so that an early average is not held to
    the random initial weights, unless ``ramp`` is off (trained initial weights); buffers
    (batch norm's running statistics) are copied."""

    def __init__(self, model: SeparatorNet, decay: float, ramp: bool = True) -> None:
        self.decay = decay
        self.ramp = ramp
        self.model = copy.deepcopy(model).eval()
        self.updates = 0
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: SeparatorNet) -> None:
        decay = self.decay
        if self.ramp:
            decay = min(decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        averaged: list[torch.Tensor] = list(self.model.parameters())
        torch._foreach_lerp_(averaged, [p.detach() for p in model.parameters()], 1.0 - decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


Scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau | torch.optim.lr_scheduler.LambdaLR


def epochs_to_train(config: TrainConfig, state: LoopState | None) -> int:
    """The run's epochs: ``config.epochs``, or fewer where a time limit planned fewer. Epochs
    lowered in ``config.json`` before a ``--resume`` win over an earlier plan (the plan is kept
    in ``last.pt`` and would otherwise go on to its own end)."""
    planned = state.planned_epochs if state else 0
    return min(planned, config.epochs) if planned else config.epochs


def make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, state: LoopState | None = None
) -> Scheduler:
    """``plateau``: stepped once an epoch with the validation loss; ``cosine``: once a batch,
    to the last batch of ``state.planned_epochs`` when a time limit has cut them (read at each
    step: the cut comes after the scheduler is made)."""
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.lr_decay_factor, patience=config.lr_decay_patience
        )
    warmup, floor = config.warmup_batches, config.min_lr_ratio

    def factor(step: int) -> float:
        epochs = epochs_to_train(config, state)
        total = epochs * config.batches_per_epoch
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_sampler(
    config: TrainConfig, tracks: Sequence[Track], model: SeparatorNet
) -> ExcerptSampler | SpectralSampler:
    if config.data_path == "spectral":
        return SpectralSampler(tracks, config.sampling, model.front_end)
    return ExcerptSampler(tracks, config.sampling)


def load_initial_weights(model: SeparatorNet, path: str) -> None:
    """``init``: start from another run's weights: a checkpoint, or an exported ONNX file of
    the ``lstm`` family (a shipped model). They fit this model exactly, or this model grows
    them: it has every one of the source's weights plus residual branches the source lacks
    (e.g. a ``cws`` model given a bottleneck LSTM), which start at zero, or it is the source
    with complex masks where the source has magnitude masks (a family whose network reads the
    same features either way, ``MaskNet.mask_heads``), the imaginary half of its mask head as
    built (its logits zero), or input features appended (``MaskNet.input_growth``: stereo features),
    their weights at zero; in every case training starts from the source's function, checked on
    a test input."""
    if Path(path).suffix == ".onnx":
        source = separator_from_onnx(path)
    else:
        source, _ = load_checkpoint(path)
    if source.config == model.config:
        model.load_state_dict(source.state_dict())
        return
    refusal = (
        f"--init {path} holds a {source.config.family} model of another configuration "
        f"({source.config.to_dict()}); fine-tuning needs the same family, size and preset, "
        "or a model that only adds residual branches, input features or an imaginary half of "
        "the masks to it."
    )
    if not _grow_from(model, source):
        raise UserError(refusal)


def _grow_from(model: SeparatorNet, source: SeparatorNet) -> bool:
    """Loads ``source``'s weights into a model that only adds residual branches to it (their
    closing modules zeroed), input features (the growing modules' new input weights zeroed) or
    an imaginary half to its masks (the mask heads' second half as built, giving imaginary
    logits of zero); False, with ``model`` untouched, when it is not such a model."""
    theirs = source.state_dict()
    ours = model.state_dict()
    domains = (source.config.mask_domain, model.config.mask_domain)
    adds_imaginary = domains == ("magnitude", "complex") and bool(model.net.mask_heads)
    heads = tuple(f"net.{name}." for name in model.net.mask_heads) if adds_imaginary else ()
    # Only the network may differ: the same front end, stems and masks (weights whose shapes
    # happen to fit a model of another preset would be another function).
    frame_shape = (*source.frame_shape, 2) if adds_imaginary else source.frame_shape
    same_frame = (source.config.family, source.config.preset, source.stems) == (
        model.config.family,
        model.config.preset,
        model.stems,
    ) and model.frame_shape == frame_shape

    growing = tuple(f"net.{name}." for name in model.net.input_growth)

    def input_axis(name: str, value: torch.Tensor) -> int | None:
        """The axis of a growing module's input channels, where ours has more of them than the
        source's and nothing else differs (a norm's 1-D tensors: 0; a weight's: 1)."""
        mine = ours[name].shape
        axis = 0 if value.dim() == 1 else 1
        if not name.startswith(growing) or value.dim() == 0 or len(mine) != value.dim():
            return None
        pairs = enumerate(zip(mine, value.shape, strict=True))
        same_elsewhere = all(a == b for i, (a, b) in pairs if i != axis)
        return axis if same_elsewhere and mine[axis] > value.shape[axis] else None

    def fits(name: str, value: torch.Tensor) -> bool:
        if name not in ours:
            return False
        if ours[name].shape == value.shape:
            return True
        if input_axis(name, value) is not None:
            return True
        # a mask head's logits: the source's are the real half
        doubled = (2 * value.shape[0], *value.shape[1:]) if value.dim() else None
        return name.startswith(heads) and ours[name].shape == doubled

    if not same_frame or not all(fits(name, value) for name, value in theirs.items()):
        return False
    closing = tuple(f"net.{name}." for name in model.net.residual_outputs)
    added = [name for name in ours if name not in theirs]
    before = {name: value.clone() for name, value in ours.items()}
    grown = {**ours, **theirs}
    for name in added:
        if name.startswith(closing):
            grown[name] = torch.zeros_like(ours[name])
    for name, value in theirs.items():
        if ours[name].shape == value.shape:
            continue
        axis = input_axis(name, value)
        if axis is not None:
            # the source's channels first; a weight's new inputs at zero, so they add nothing;
            # a norm's new channels at their initial values (the weights after it are zero)
            grown[name] = ours[name].clone() if value.dim() == 1 else torch.zeros_like(ours[name])
            grown[name].narrow(axis, 0, value.shape[axis]).copy_(value)
        else:
            # the real half from the source, the imaginary half as this model was built: each
            # family builds it to give imaginary logits of zero, the magnitude mask itself
            # (layers/masks.py), e.g. a zero head (cws) or a norm's zero weight after random
            # weights (lstm: zeros on both sides would leave that path without a gradient)
            grown[name] = torch.cat([value, ours[name][value.shape[0] :]])
    model.load_state_dict(grown)
    # The grown model must compute the source's function before training changes it.
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand((1, 12, *source.frame_shape), generator=generator)
    # the same magnitudes as a spectrum: real parts, imaginary parts zero
    features = torch.stack([frames, torch.zeros_like(frames)], -1) if adds_imaginary else frames
    was_training = model.training
    model.eval()
    source.eval()
    with torch.no_grad():
        masks = model.net(features, *model.net.initial_state(1))[0]
        expected = source.net(frames, *source.net.initial_state(1))[0]
        if adds_imaginary:
            # real parts the source's masks, imaginary parts zero
            expected = torch.stack([expected, torch.zeros_like(expected)], -1)
        same = torch.allclose(masks, expected, atol=1e-5)
    model.train(was_training)
    if not same:
        model.load_state_dict(before)
    return same


def _save_last(
    path: Path,
    model: SeparatorNet,
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler,
    state: LoopState,
    average: WeightAverage | None,
) -> None:
    save_checkpoint(
        path,
        model,
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        loop=dataclasses.asdict(state),
        torch_rng=torch.get_rng_state(),
        ema=None if average is None else average.state_dict(),
    )


def _append_log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as log:
        log.write(json.dumps(record) + "\n")


def make_objective(
    model: SeparatorNet, config: TrainConfig
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss of one batch from its two tensors, compiled when ``config.compile`` is set."""
    make_batch = SpectralBatch if config.data_path == "spectral" else Batch

    def objective(mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return loss_value(model, make_batch(mixture, targets), config)

    if not config.compile:
        return objective
    compiled = torch.compile(objective)
    chosen: list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = []

    def compiled_now(mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # The backward too is compiled at the call, not at the first backward(), so that a
        # failure to compile it surfaces here.
        with torch._functorch.config.patch(force_non_lazy_backward_lowering=True):
            return compiled(mixture, targets)

    def first_compiled(mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # The compiler fails on some graphs (torch 2.13's inductor on a cws model with a
        # bottleneck LSTM: "Cannot convert expression to float"); the eager loss is the same
        # function, only slower, so the run goes on without it rather than ending.
        if chosen:
            return chosen[0](mixture, targets)
        try:
            loss = compiled_now(mixture, targets)
            chosen.append(compiled_now)
        except torch._dynamo.exc.TorchDynamoException as error:  # InductorError is one
            reason = (str(error).strip().splitlines() or [""])[0]  # the rest is boilerplate
            print(
                f"livestems train: torch.compile could not compile this model "
                f"({type(error).__name__}: {reason}); training runs without it.",
                file=sys.stderr,
            )
            chosen.append(objective)
            loss = objective(mixture, targets)
        return loss

    return first_compiled


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    resume: bool = False,
    max_batches: int | None = None,
    show_progress: bool = True,
) -> LoopState:
    """Train (or continue training) the run in ``run_dir``.

    Args:
        max_batches: stop after training this many batches in this call (a test's "kill").
    """
    run_dir = Path(run_dir)
    config_path, last_path, best_path = (
        run_dir / "config.json",
        run_dir / "last.pt",
        run_dir / "best.pt",
    )
    if resume:
        if not last_path.exists():
            raise UserError(f"Nothing to resume in {run_dir}: it has no last.pt.")
        saved = TrainConfig.from_file(config_path)
        if saved != config:
            raise UserError(
                f"--resume continues the run in {run_dir} with its own config.json; "
                "leave out the other options (or start a new run folder)."
            )
    elif last_path.exists():
        raise UserError(
            f"{run_dir} already holds a run (last.pt): pass --resume to continue it, or "
            "choose another --out."
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    device = _device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    distributed = _Distributed(device)
    if config.time_limit_s and distributed.world_size > 1:
        # each rank would time itself and could cut a different number of epochs
        raise UserError("time_limit_s is for one process; leave it out under torchrun.")
    # before the songs are loaded, so that the refusal comes at once (build_model seeds torch
    # itself, so the model built below is the same)
    if config.freeze_norms and not batch_norms(build_model(config)):
        raise UserError(
            f"freeze_norms keeps batch norms' statistics, and this {config.family} model has no "
            "batch norm (its layer norms keep no statistics): leave the key out."
        )
    train_tracks, valid_tracks = load_training_data(config)

    model = build_model(config)
    sampler = make_sampler(config, train_tracks, model)
    n_train_tracks = len(train_tracks)
    del train_tracks  # the sampler holds what it needs (the spectral one: no audio at all)
    # Only now: with the heap kept from the start, the analysis's temporaries fragmented it
    # around the stored spectra, and a MUSDB18-7 run held 11 GB where 5 GB were in use.
    keep_freed_memory()
    if not resume and config.init is not None:
        load_initial_weights(model, config.init)
    elif not resume and config.fit_input_statistics:
        fit_input_statistics(model, sampler, config.seed)
    model.to(device)
    set_training_mode(model, config.freeze_norms)
    for module in model.modules():
        if isinstance(module, nn.RNNBase):
            # cuDNN wants each LSTM's weights in one block; on the H200 they were not, and
            # torch warned that it would compact them again at every call
            module.flatten_parameters()
    if device.type == "cuda" and isinstance(sampler, ExcerptSampler):
        sampler.to(device)  # cut the excerpts on the GPU: the CPU could not keep up
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # one LoopState object for the whole call: the scheduler reads its planned_epochs
    state = LoopState()
    scheduler = make_scheduler(config, optimizer, state)
    average = WeightAverage(model, config.ema_decay, config.ema_ramp) if config.ema_decay else None
    if resume:
        saved_model, extra = load_checkpoint(last_path, map_location=device)
        model.load_state_dict(saved_model.state_dict())
        set_training_mode(model, config.freeze_norms)
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        for name, value in extra["loop"].items():
            setattr(state, name, value)
        torch.set_rng_state(extra["torch_rng"])
        if average is not None:
            average.load_state_dict(extra["ema"])
    distributed.broadcast_parameters(model)
    if average is not None and not resume:
        average = WeightAverage(model, config.ema_decay, config.ema_ramp)  # the broadcast weights
    objective = make_objective(model, config)
    if distributed.is_main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(config_path) as file:
            file.write(json.dumps(config.to_dict(), indent=2).encode() + b"\n")
        print(
            f"training {config.family}/{config.size} at {config.preset} on {n_train_tracks} "
            f"songs, validating on {len(valid_tracks)}; "
            f"{sum(p.numel() for p in model.parameters()):,} parameters; {device}"
            + (
                f"; {sampler.nbytes / 2**30:.1f} GiB of spectra held"
                if isinstance(sampler, SpectralSampler)
                else ""
            ),
            flush=True,
        )
    validated = model if average is None else average.model

    trained_here = 0
    call_start = time.perf_counter()
    epochs_here = 0
    last_epoch_s = 0.0  # the latest epoch's wall time, validation included
    while state.epoch < epochs_to_train(config, state) and not state.stopped_early:
        epoch_wall_start = time.perf_counter()
        if config.time_limit_s and epochs_here:
            if time.perf_counter() - call_start + last_epoch_s > config.time_limit_s:
                print(f"stopped: another epoch would pass time_limit_s {config.time_limit_s:g}")
                break
        progress = Progress(
            show_progress and distributed.is_main,
            config.batches_per_epoch,
            state.batch,
            state.epoch,
        )
        epoch_start = time.perf_counter()
        first_batch = state.batch
        while state.batch < config.batches_per_epoch:
            if max_batches is not None and trained_here >= max_batches:
                progress.close()
                return state
            batch = sampler.batch(
                config.seed, state.epoch, state.batch, config.batch_size, distributed.rank
            ).to(device)
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = objective(batch.mixture, batch.targets)
            if not torch.isfinite(loss):
                raise UserError(
                    f"The training loss became {loss.item()} at epoch {state.epoch}, batch "
                    f"{state.batch}: lower --lr, or check the data for NaN."
                )
            loss.backward()
            distributed.average_gradients(model)
            optimizer.step()
            if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                scheduler.step()
            if average is not None:
                average.update(model)
            state.epoch_loss_sum += loss.item()
            state.batch += 1
            state.step += 1
            trained_here += 1
            progress.update(loss.item(), config.batch_size / (time.perf_counter() - started))
            if distributed.is_main and state.step % config.checkpoint_every == 0:
                _save_last(last_path, model, optimizer, scheduler, state, average)
        progress.close()

        n_batches = config.batches_per_epoch
        train_loss = state.epoch_loss_sum / n_batches
        seconds = time.perf_counter() - epoch_start
        valid_loss = valid_sdr = math.nan
        if distributed.is_main:
            valid_loss = validation_loss(validated, valid_tracks, config)
            if config.select_by == "sdr":
                valid_sdr = validation_sdr(validated, valid_tracks)
        if distributed.world_size > 1:
            import torch.distributed as dist

            shared = torch.tensor([valid_loss, valid_sdr], dtype=torch.float64, device=device)
            dist.broadcast(shared, src=0)
            valid_loss, valid_sdr = (float(value) for value in shared.tolist())
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(valid_loss)
        if config.select_by == "sdr":
            # rank 0's figure decides; the other ranks write nothing.
            improved = valid_sdr > state.best_valid_sdr
            if improved:
                state.best_valid_sdr = valid_sdr
        else:
            improved = valid_loss < state.best_valid_loss
        if improved:
            state.best_epoch = state.epoch
        if valid_loss < state.best_valid_loss:
            state.best_valid_loss = valid_loss
            state.epochs_without_improvement = 0
        else:
            state.epochs_without_improvement += 1
        record = {
            "epoch": state.epoch,
            "step": state.step,
            "train_loss": train_loss,
            "valid_loss": valid_loss,
            "best_valid_loss": state.best_valid_loss,
            **(
                {"valid_sdr": valid_sdr, "best_valid_sdr": state.best_valid_sdr}
                if config.select_by == "sdr"
                else {}
            ),
            "best_epoch": state.best_epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "samples_per_s": (n_batches - first_batch) * config.batch_size / max(seconds, 1e-9),
        }
        state.epoch += 1
        state.batch = 0
        state.epoch_loss_sum = 0.0
        epochs_here += 1
        last_epoch_s = time.perf_counter() - epoch_wall_start
        if config.time_limit_s and epochs_here == 2 and not state.planned_epochs:
            # once, from the second epoch's pace, validation included: the first carries the
            # warm-up (a first epoch beside a scoring job took 1,047 s, the next ones 80); 5 %
            # spare
            pace = last_epoch_s
            fit = state.epoch + int(
                0.95 * (config.time_limit_s - (time.perf_counter() - call_start)) / pace
            )
            state.planned_epochs = max(state.epoch, min(config.epochs, fit))
            record["planned_epochs"] = state.planned_epochs
        if state.epochs_without_improvement >= config.early_stop_patience:
            state.stopped_early = True
            record["stopped_early"] = True
        if distributed.is_main:
            if improved:
                save_checkpoint(
                    best_path,
                    validated,
                    epoch=record["epoch"],
                    valid_loss=valid_loss,
                    valid_sdr=valid_sdr,
                    train_config=config.to_dict(),
                )
            _save_last(last_path, model, optimizer, scheduler, state, average)
            _append_log(run_dir / "log.jsonl", record)
            print(
                f"epoch {record['epoch']:4d}  train {train_loss:.5f}  valid {valid_loss:.5f}"
                + (f"  SDR {valid_sdr:.2f} dB" if config.select_by == "sdr" else "")
                + f"{'  *' if improved else '   '}  lr {record['lr']:.2e}  "
                f"{record['samples_per_s']:.1f} samples/s",
                flush=True,
            )
    distributed.close()
    return state
