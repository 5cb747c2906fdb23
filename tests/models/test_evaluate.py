"""Evaluation: the scores equal museval's own on the same signals, silent references are left
out and counted, the oracle is a ceiling above the mixture, and ``livestems eval`` scores an
exported model through the streaming path.

BSSEval v4 is slow (about 7 s of one core per call for four stereo stems, under 1 s for two),
so the synthetic tracks are short and mostly of two or three stems.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
museval = pytest.importorskip("museval")

import soundfile as sf  # noqa: E402
from museval.aggregate import EvalStore, TrackStore  # noqa: E402

from livestems.export.onnx_export import export_onnx  # noqa: E402
from livestems.models.data.datasets import MUSDB_VALID_TRACKS, STEMS, Track  # noqa: E402
from livestems.models.evaluation import evaluate as evaluation  # noqa: E402
from livestems.models.evaluation.blend import (  # noqa: E402
    SPATIAL_FRAME,
    blend_estimators,
    once_per_track,
    spatial_wiener,
    swapped_estimator,
)
from livestems.models.evaluation.blend import main as blend_main  # noqa: E402
from livestems.models.evaluation.evaluate import (  # noqa: E402
    BSSEVAL_METRICS,
    DITHER_RMS,
    DITHER_SEED,
    METRICS,
    EvalResult,
    evaluate_tracks,
    mixture_estimator,
    oracle_estimator,
    score_track,
    si_sdr,
    torch_estimator,
)
from livestems.models.families.registry import get_family  # noqa: E402
from livestems.realtime.commands.cli import main  # noqa: E402
from livestems.realtime.errors import UserError  # noqa: E402
from tests.helpers.networks import randomized  # noqa: E402

RATE = 44100


def _tone(n_samples: int, frequency: float, amplitude: float, pan: float = 0.5) -> np.ndarray:
    t = np.arange(n_samples) / RATE
    mono = amplitude * np.sin(2 * np.pi * frequency * t)
    return np.stack([(1 - pan) * mono, pan * mono], axis=1)


def _bursts(n_samples: int, seed: int, amplitude: float = 0.2) -> np.ndarray:
    """Noise bursts, 50 ms every quarter second: something drum-like."""
    noise = amplitude * np.random.default_rng(seed).standard_normal((n_samples, 2))
    envelope = ((np.arange(n_samples) % (RATE // 4)) < RATE // 20).astype(np.float64)
    return noise * envelope[:, None]


def _track(name: str, stems: dict[str, np.ndarray]) -> Track:
    stems32 = {stem: audio.astype(np.float32) for stem, audio in stems.items()}
    mixture = np.sum(list(stems32.values()), axis=0, dtype=np.float32)
    return Track(name, stems32, mixture)


def _leaky_estimate(track: Track) -> dict[str, np.ndarray]:
    """Each stem with some of the mixture and a little noise: scores in a realistic range."""
    rng = np.random.default_rng(len(track.name))
    return {
        stem: (0.8 * audio + 0.2 * track.mixture + 0.01 * rng.standard_normal(audio.shape)).astype(
            np.float32
        )
        for stem, audio in track.stems.items()
    }


def _leaky_estimate_keeping_silence(track: Track) -> dict[str, np.ndarray]:
    """Like ``_leaky_estimate``, but silent where its reference is (museval's NaN frames come
    from either)."""
    estimates = _leaky_estimate(track)
    for stem, audio in track.stems.items():
        estimates[stem][np.all(audio == 0, axis=1)] = 0.0
    return estimates


@pytest.fixture(scope="module")
def two_stem_tracks() -> list[Track]:
    """Three short two-stem tracks: a plain one, one whose ``b`` is silent for its first second,
    and one whose ``b`` is silent throughout."""
    n = 3 * RATE
    partly_silent = _bursts(n, seed=2)
    partly_silent[:RATE] = 0.0
    return [
        _track("plain", {"a": _tone(n, 330, 0.3, 0.3), "b": _bursts(n, seed=1)}),
        _track("b silent first", {"a": _tone(n, 220, 0.3, 0.6), "b": partly_silent}),
        _track("b silent", {"a": _tone(2 * RATE, 440, 0.3), "b": np.zeros((2 * RATE, 2))}),
    ]


@pytest.fixture(scope="module")
def leaky_result(two_stem_tracks: list[Track]) -> EvalResult:
    return evaluate_tracks(_leaky_estimate_keeping_silence, two_stem_tracks)


def _museval_frames(track: Track, estimates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """museval on the same signals, as eval_mus_track calls it: metric -> (n_stems, n_frames).
    The references carry the same dither as ``score_track`` gives them (what it regularises is
    tested apart, in ``test_sir_and_sar_of_band_limited_stems_are_not_below_sdr``)."""
    references = np.stack([track.stems[s] for s in track.stems]).astype(np.float64)
    dither = np.random.default_rng(DITHER_SEED).standard_normal(references.shape)
    references = references + DITHER_RMS * dither * (references != 0)
    estimated = np.stack([estimates[s] for s in track.stems]).astype(np.float64)
    sdr, isr, sir, sar = museval.evaluate(references, estimated, win=RATE, hop=RATE)
    return {"SDR": sdr, "SIR": sir, "SAR": sar, "ISR": isr}


@pytest.mark.slow
def test_aggregate_equals_museval_called_directly(
    two_stem_tracks: list[Track], leaky_result: EvalResult
) -> None:
    """On the tracks museval accepts (it refuses one with a wholly silent stem): frame by frame,
    then through museval's own TrackStore and EvalStore."""
    accepted = EvalResult(leaky_result.stems, leaky_result.tracks[:2])
    store = EvalStore(frames_agg="median", tracks_agg="median")
    track_medians: dict[tuple[str, str], list[float]] = {}
    for track, scores in zip(two_stem_tracks[:2], accepted.tracks, strict=True):
        frames = _museval_frames(track, _leaky_estimate_keeping_silence(track))
        track_store = TrackStore(track_name=track.name, win=1.0, hop=1.0)
        for index, stem in enumerate(track.stems):
            values = {metric: frames[metric][index].tolist() for metric in BSSEVAL_METRICS}
            track_store.add_target(target_name=stem, values=values)
            for metric in BSSEVAL_METRICS:
                row = np.where(np.isinf(values[metric]), np.nan, values[metric])
                np.testing.assert_allclose(scores.frames[stem][metric], row, rtol=0, atol=1e-9)
                median = np.nanmedian(row) if np.any(np.isfinite(row)) else np.nan
                track_medians.setdefault((stem, metric), []).append(float(median))
        store.add_track(track_store)
    museval_aggregate = store.agg_frames_tracks_scores()
    differences = []
    for stem in ("a", "b"):
        for metric in BSSEVAL_METRICS:
            ours = accepted.aggregate(stem, metric)
            medians = np.array(track_medians[(stem, metric)])
            direct = float(np.nanmedian(medians))
            assert ours == pytest.approx(direct, abs=1e-6), (stem, metric)
            # museval's TrackStore rounds each frame to 5 decimals: within half of that.
            stored = float(museval_aggregate[(stem, metric)])
            assert ours == pytest.approx(stored, abs=5e-6), (stem, metric)
            differences.append(abs(ours - direct))
    assert max(differences) <= 1e-6


def _band_limited(n_samples: int, seed: int, cutoff_hz: float) -> np.ndarray:
    """Stereo white noise with nothing above ``cutoff_hz``: what an AAC stem looks like to
    BSSEval's projection (MUSDB18's stems stop near 16 kHz)."""
    noise = np.random.default_rng(seed).standard_normal((n_samples, 2))
    spectrum = np.fft.rfft(noise, axis=0)
    spectrum[np.fft.rfftfreq(n_samples, 1 / RATE) > cutoff_hz] = 0
    return 0.1 * np.fft.irfft(spectrum, n=n_samples, axis=0)


@pytest.mark.slow
def test_sir_and_sar_of_band_limited_stems_are_not_below_sdr(monkeypatch) -> None:
    """SDR <= SIR and SDR <= SAR when interference and artefacts are independent of each other,
    as here: each estimate is its stem plus some of another stem plus independent noise. With
    band-limited references museval's Gram matrix is singular; without the dither SIR came out
    far below SDR (asserted too, so that the test shows what it guards against)."""
    n = 3 * RATE
    stems = {f"s{i}": _band_limited(n, seed=i, cutoff_hz=16000) for i in range(3)}
    track = _track("band-limited", stems)
    noise = np.random.default_rng(7).standard_normal((n, 2))
    estimates = {
        name: (audio + 0.3 * track.stems[f"s{(i + 1) % 3}"] + 0.02 * noise).astype(np.float32)
        for i, (name, audio) in enumerate(track.stems.items())
    }

    def medians(scores) -> dict[str, dict[str, float]]:
        return {
            stem: {m: float(np.nanmedian(scores.frames[stem][m])) for m in ("SDR", "SIR", "SAR")}
            for stem in stems
        }

    dithered = medians(score_track(track, estimates))
    monkeypatch.setattr(evaluation, "DITHER_RMS", 0.0)
    plain = medians(score_track(track, estimates))
    for stem in stems:
        assert dithered[stem]["SIR"] >= dithered[stem]["SDR"] - 0.1, (stem, dithered[stem])
        assert dithered[stem]["SAR"] >= dithered[stem]["SDR"] - 0.1, (stem, dithered[stem])
        assert dithered[stem]["SDR"] == pytest.approx(plain[stem]["SDR"], abs=0.005)
    assert min(plain[s]["SIR"] - plain[s]["SDR"] for s in stems) < -1.0, plain


@pytest.mark.slow
def test_silent_reference_is_counted_not_averaged_in(leaky_result: EvalResult) -> None:
    plain, partly, silent = leaky_result.tracks
    assert plain.excluded_frames("b") == 0
    # museval leaves out the whole window, for every stem, when any reference is silent.
    assert partly.excluded_frames("a") == partly.excluded_frames("b") == 1
    assert silent.excluded_frames("b") == silent.n_frames == 2
    # museval would refuse that track; its other stem is still scored.
    assert silent.excluded_frames("a") == 0
    assert math.isnan(silent.si_sdr["b"]) and math.isfinite(silent.si_sdr["a"])
    assert leaky_result.excluded_tracks("b", "SDR") == 1
    assert leaky_result.excluded_tracks("b", "SI-SDR") == 1
    assert leaky_result.excluded_frames("b") == 3
    # The aggregate is the median of the two tracks that have frames, not dragged by NaN.
    expected = np.median([plain.median("b", "SDR"), partly.median("b", "SDR")])
    assert leaky_result.aggregate("b", "SDR") == pytest.approx(expected)
    for stem in leaky_result.stems:
        for metric in METRICS:
            assert math.isfinite(leaky_result.aggregate(stem, metric)), (stem, metric)
    # Reported as such: valid JSON (no NaN), and the table names what was left out.
    report = leaky_result.to_dict()
    json.dumps(report, allow_nan=False)
    assert report["stems"]["b"]["frames_excluded"]["SDR"] == 3
    assert report["tracks"][2]["stems"]["b"]["SDR"] is None
    table = leaky_result.markdown_table()
    assert "3 of 8" in table and "nan" not in table.lower()


def test_si_sdr_of_scaled_reference_is_the_cap_and_silence_is_undefined() -> None:
    reference = _tone(RATE // 10, 440, 0.5)
    assert si_sdr(reference, 0.5 * reference) == pytest.approx(120.0)
    assert si_sdr(reference, np.zeros_like(reference)) == pytest.approx(-120.0)
    assert math.isnan(si_sdr(np.zeros_like(reference), reference))
    # Noise orthogonal to the reference: SI-SDR is the signal-to-noise ratio, at any gain.
    noise = 0.1 * np.random.default_rng(0).standard_normal(reference.shape)
    noise -= np.sum(noise * reference) / np.sum(reference**2) * reference
    expected = 10 * np.log10(np.sum(reference**2) / np.sum(noise**2))
    assert si_sdr(reference, 3.0 * (reference + noise)) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("preset", ["live", "ultra", "studio"])
@pytest.mark.parametrize("n_bands", [1, 4])
def test_oracle_estimates_line_up_and_sum_to_the_mixture(preset: str, n_bands: int) -> None:
    """With one stem silent, the other's ideal mask is one: its estimate is the mixture, on
    time (a sample off would cost the SI-SDR far more than the front end's own error)."""
    n = RATE
    track = _track("one source", {"a": _tone(n, 330, 0.3) + _bursts(n, 3), "b": np.zeros((n, 2))})
    estimates = oracle_estimator(preset, n_bands)(track)
    assert estimates["a"].shape == track.mixture.shape
    floor = 100.0 if n_bands == 1 else 50.0  # the PQMF bank reconstructs to about 63 dB
    assert si_sdr(track.stems["a"], estimates["a"]) > floor
    assert np.max(np.abs(estimates["b"])) < 1e-6
    total = estimates["a"] + estimates["b"]
    assert si_sdr(track.mixture, total) > floor


@pytest.mark.slow
def test_oracle_beats_the_mixture_on_every_stem() -> None:
    n = 2 * RATE
    track = _track(
        "three stems",
        {
            "vocals": _tone(n, 660, 0.2, 0.5) + _tone(n, 990, 0.1, 0.5),
            "drums": _bursts(n, seed=4),
            "bass": _tone(n, 55, 0.4, 0.5),
        },
    )
    oracle = evaluate_tracks(oracle_estimator("live"), [track])
    mixture = evaluate_tracks(mixture_estimator(), [track])
    for stem in track.stems:
        for metric in ("SDR", "SI-SDR"):
            assert oracle.aggregate(stem, metric) > mixture.aggregate(stem, metric) + 3, stem


def test_torch_estimator_cuts_the_models_latency() -> None:
    class Delay(torch.nn.Module):
        """Two stems, each half the mix, ``latency_samples`` late, as a causal model gives."""

        stems = ("a", "b")
        latency_samples = 37

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            late = torch.nn.functional.pad(waveform, (self.latency_samples, 0))
            late = late[..., : waveform.shape[-1]]
            return torch.stack([0.5 * late, 0.5 * late], dim=1)

    track = _track("delay", {"a": _tone(4000, 330, 0.3), "b": _bursts(4000, 5)})
    estimates = torch_estimator(Delay())(track)
    np.testing.assert_allclose(estimates["a"], 0.5 * track.mixture, atol=1e-7)


# ------------------------------------------------------------------------------ the command


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight ``lstm`` of the ``small`` size at ``live``, exported to ONNX."""
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(randomized(get_family("lstm").config("small", preset="live"), seed=7), path)
    return path


def _musdb_folder(root: Path, n_tracks: int, seconds: float) -> Path:
    """A MUSDB18-HQ-like folder: ``train/<validation track>/<stem>.wav``."""
    n = round(seconds * RATE)
    for index, name in enumerate(MUSDB_VALID_TRACKS[:n_tracks]):
        folder = root / "train" / name
        folder.mkdir(parents=True)
        stems = {
            "vocals": _tone(n, 440 + 110 * index, 0.2),
            "drums": _bursts(n, seed=index),
            "bass": _tone(n, 55 * (index + 1), 0.3),
            "other": _tone(n, 1320, 0.1, 0.2) + _bursts(n, seed=10 + index, amplitude=0.02),
        }
        for stem, audio in stems.items():
            sf.write(folder / f"{stem}.wav", audio.astype(np.float32), RATE, subtype="FLOAT")
        mixture = np.sum(list(stems.values()), axis=0).astype(np.float32)
        sf.write(folder / "mixture.wav", mixture, RATE, subtype="FLOAT")
    return root


def _check_report(report: dict, model: Path, n_tracks: int) -> None:
    assert report["model"]["file"] == model.name
    assert len(report["model"]["metadata_sha256"]) == 64
    assert report["museval_version"] == museval.version._version
    assert len(report["tracks"]) == n_tracks
    scores = report["results"]["model"]
    assert report["scored"] == "model" and report["stems"] == scores["stems"]
    assert set(scores["stems"]) == set(STEMS)
    for stem in STEMS:
        assert set(METRICS) <= set(scores["stems"][stem])
        assert isinstance(scores["stems"][stem]["SDR"], float)
    assert len(scores["tracks"]) == n_tracks


@pytest.mark.slow
def test_eval_command_scores_an_exported_model_on_two_tracks(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    musdb = _musdb_folder(tmp_path / "musdb", n_tracks=2, seconds=1.0)
    out = tmp_path / "scores.json"
    status = main(["eval", str(tiny_model), "--musdb", str(musdb), "--json", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(out.read_text())
    _check_report(report, tiny_model, 2)
    assert report["split"] == "valid" and report["preset"] == "live"
    assert "| **mean** |" in captured.out and "[2/2]" in captured.err


def test_eval_tracks_out_of_range_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--oracle", "--tracks", "0"])
    assert exited.value.code == 2
    assert "--tracks: 0 is out of range: give 1 to 1000000" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--oracle", "--musdb", "{missing}"], "does not exist"),
        (["--oracle", "--musdb", "{empty}"], "not a MUSDB18 folder"),
        (["--oracle", "--musdb", "{musdb}", "--split", "dev"], "Unknown split"),
        (["--oracle", "--musdb", "{musdb}", "--split", "test"], "holds no MUSDB18 tracks"),
        (["{garbage}", "--musdb", "{musdb}"], "not a valid ONNX model"),
        (["--musdb", "{musdb}"], "Give a MODEL"),
        (["--oracle"], "No MUSDB18 folder"),
    ],
)
def test_eval_command_bad_inputs_end_in_one_sentence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("LIVESTEMS_MUSDB", raising=False)
    musdb = tmp_path / "musdb"
    (musdb / "train").mkdir(parents=True)
    (musdb / "test").mkdir()
    (tmp_path / "empty").mkdir()
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    places = {
        "{missing}": str(tmp_path / "missing"),
        "{empty}": str(tmp_path / "empty"),
        "{musdb}": str(musdb),
        "{garbage}": str(garbage),
    }
    status = main(["eval", *[places.get(argument, argument) for argument in arguments]])
    error = capsys.readouterr().err.strip()
    assert status == 1
    assert message in error and "Traceback" not in error
    assert len(error.splitlines()) == 1


@pytest.mark.slow
def test_eval_command_on_musdb_validation_tracks(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = os.environ.get("LIVESTEMS_MUSDB")
    if not root:
        pytest.skip("LIVESTEMS_MUSDB is not set (e.g. LIVESTEMS_MUSDB=../shared/data/musdb18-7)")
    if not (Path(root) / "train").is_dir():
        pytest.skip(f"LIVESTEMS_MUSDB={root} has no train/ folder")
    out = tmp_path / "musdb.json"
    arguments = ["eval", str(tiny_model), "--tracks", "2", "--seconds", "2", "--json", str(out)]
    status = main(arguments)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(out.read_text())
    _check_report(report, tiny_model, 2)
    assert set(report["tracks"]) <= set(MUSDB_VALID_TRACKS)


# ----------------------------------------------------------------------------- blends


def test_blend_is_the_mean_of_its_members_and_runs_each_once(
    two_stem_tracks: list[Track],
) -> None:
    calls: dict[str, int] = {"leaky": 0, "exact": 0}

    def counted(name: str, estimate):
        def run(track: Track):
            calls[name] += 1
            return estimate(track)

        return run

    def exact(track: Track) -> dict[str, np.ndarray]:
        return dict(track.stems)

    members = {"leaky": counted("leaky", _leaky_estimate), "exact": counted("exact", exact)}
    estimators = blend_estimators(members, [("leaky", "exact")])
    assert list(estimators) == ["leaky", "exact", "leaky+exact"]
    track = two_stem_tracks[0]
    for estimate in estimators.values():
        outputs = estimate(track)
    for stem, reference in track.stems.items():
        expected = (_leaky_estimate(track)[stem] + reference) / 2
        np.testing.assert_allclose(outputs[stem], expected, atol=1e-12)
    assert calls == {"leaky": 1, "exact": 1}
    # a blend whose members were not scored on their own runs them itself
    alone = blend_estimators(members, [("leaky", "exact")])["leaky+exact"]
    alone(two_stem_tracks[1])
    assert calls == {"leaky": 2, "exact": 2}


@pytest.mark.parametrize(
    ("blend", "message"),
    [(("a", "c"), "names c, which is not a model given"), (("a", "a"), "two or more different")],
)
def test_a_blend_of_unknown_or_repeated_models_is_refused(blend, message: str) -> None:
    members = {"a": _leaky_estimate, "b": _leaky_estimate}
    with pytest.raises(UserError, match=message):
        blend_estimators(members, [blend])


def test_swapped_estimator_runs_the_model_on_the_mirrored_mix_and_mirrors_its_stems_back(
    two_stem_tracks: list[Track],
) -> None:
    def left_everywhere(track: Track) -> dict[str, np.ndarray]:
        """Not symmetric: every stem is the mixture's left channel, in both channels."""
        return {stem: track.mixture[:, [0, 0]] for stem in track.stems}

    track = two_stem_tracks[0]
    swapped = swapped_estimator(left_everywhere)(track)
    for stem in track.stems:
        np.testing.assert_array_equal(swapped[stem], track.mixture[:, [1, 1]])
    # a member whose stems are kept for its -spatial variant still runs on the mirrored mix
    cached = once_per_track(left_everywhere)
    cached(track)
    for audio in swapped_estimator(cached)(track).values():
        np.testing.assert_array_equal(audio, track.mixture[:, [1, 1]])
    exact = swapped_estimator(lambda track: dict(track.stems))(track)
    for stem, reference in track.stems.items():
        np.testing.assert_array_equal(exact[stem], reference)


def _panned_track(n_samples: int) -> Track:
    """Two sources at different places in the stereo image: a tone left of centre, noise
    bursts right of it."""
    burst = _bursts(n_samples, seed=3)
    return _track("panned", {"a": _tone(n_samples, 440.0, 0.3, pan=0.2), "b": burst * [0.3, 1.0]})


def test_spatial_wiener_keeps_stems_that_are_already_right() -> None:
    track = _panned_track(2 * RATE)
    filtered = spatial_wiener(track.mixture, track.stems, RATE)
    for stem, reference in track.stems.items():
        inner = slice(SPATIAL_FRAME, -SPATIAL_FRAME)
        error = filtered[stem][inner] - reference[inner]
        sdr = 10 * np.log10(np.sum(reference[inner] ** 2) / np.sum(error**2))
        assert sdr > 20.0, (stem, sdr)


def test_spatial_wiener_reads_no_future() -> None:
    """What comes after sample m changes nothing before m minus one frame (the frame's own
    look-ahead)."""
    track = _panned_track(RATE)
    m = RATE // 2
    changed = {stem: audio.copy() for stem, audio in track.stems.items()}
    for audio in changed.values():
        audio[m:] = np.random.default_rng(0).standard_normal(audio[m:].shape) * 0.5
    mixture = np.sum(list(changed.values()), axis=0)
    before = spatial_wiener(track.mixture, track.stems, RATE)
    after = spatial_wiener(mixture, changed, RATE)
    for stem in track.stems:
        np.testing.assert_allclose(
            after[stem][: m - SPATIAL_FRAME], before[stem][: m - SPATIAL_FRAME], atol=1e-9
        )
        assert not np.allclose(after[stem][m:], before[stem][m:])


@pytest.mark.slow
def test_blend_command_scores_a_model_blended_with_itself_as_the_model(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    musdb = _musdb_folder(tmp_path / "musdb", n_tracks=2, seconds=1.0)
    status = blend_main(
        [f"a={tiny_model}", f"b={tiny_model}", "--blend", "a+b", "--musdb", str(musdb)]
        + ["--swapped", "a", "--spatial", "b"]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    rows = {
        line.split(" | ")[0][2:]: line.split(" | ")[1:]
        for line in captured.out.splitlines()
        if line.startswith("| ") and not line.startswith("| system")
    }
    assert set(rows) == {"a", "b", "a+b", "a-swapped", "b-spatial"}
    assert rows["a"] == rows["b"] == rows["a+b"]  # the mean of equal stems is those stems
    assert rows["a-swapped"] != rows["a"] and rows["b-spatial"] != rows["b"]
    assert "2 tracks of the valid split" in captured.out


@pytest.mark.parametrize("option", ["--swapped", "--spatial"])
def test_blend_command_refuses_a_variant_of_a_model_not_given(
    tiny_model: Path, tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    musdb = _musdb_folder(tmp_path / "musdb", n_tracks=1, seconds=0.5)
    status = blend_main([f"a={tiny_model}", option, "c", "--musdb", str(musdb)])
    error = capsys.readouterr().err.strip()
    assert status == 1
    assert error == (
        f"livestems blend: {option} names c, which is not a model given: the models are a."
    )
