"""The benchmark's peers: each loads (random weights) and separates; a missing one is reported."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livestems.export import peers as peers_module  # noqa: E402
from livestems.export.peers import (  # noqa: E402
    ENTRY_POINT_GROUP,
    PEERS,
    PeerModel,
    PeerSpec,
    load_peer,
    measure_peers,
    separate,
)
from livestems.models.families.torchaudio_stub import TorchaudioStubError, torchaudio_stub  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RATE = 44100


def _noise(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((round(seconds * RATE), 2))).astype(np.float32)


def _skip_unless_installed(spec: PeerSpec) -> None:
    # find_spec, not importorskip: importing openunmix without the stub would fail on
    # torchaudio and be misreported as a missing package.
    package = spec.modules[0].split(".")[0]
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (the 'bench' extra; ./setup.sh --dev)")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread, as the benchmark runs it (no oversubscription on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("spec", PEERS, ids=[spec.name for spec in PEERS])
def test_each_peer_separates_two_seconds_into_four_stems(spec: PeerSpec, one_thread: None) -> None:
    _skip_unless_installed(spec)
    peer = load_peer(spec)
    assert peer.sample_rate == RATE
    assert sorted(peer.stems) == ["bass", "drums", "other", "vocals"]
    assert peer.parameters > 1_000_000
    audio = _noise(2.0)
    stems = separate(peer, audio)
    assert stems.shape == (4, audio.shape[0], 2)
    assert stems.dtype == np.float32
    assert np.isfinite(stems).all()


def test_the_torchaudio_stub_raises_when_touched_and_does_not_linger() -> None:
    real = sys.modules.get("torchaudio")
    with torchaudio_stub():
        import torchaudio
        import torchaudio.transforms

        with pytest.raises(TorchaudioStubError, match=r"torchaudio\.load was used"):
            torchaudio.load  # noqa: B018
        with pytest.raises(TorchaudioStubError, match=r"torchaudio\.transforms\.Resample"):
            torchaudio.transforms.Resample  # noqa: B018
        assert not hasattr(torchaudio, "__file__")  # Python's probes get AttributeError
    assert sys.modules.get("torchaudio") is real
    if real is None:
        assert not [name for name in sys.modules if name.split(".")[0] == "torchaudio"]


def test_open_unmix_holds_the_stub_so_any_use_of_torchaudio_fails_loudly() -> None:
    open_unmix = next(spec for spec in PEERS if spec.name == "open-unmix")
    _skip_unless_installed(open_unmix)
    load_peer(open_unmix)
    import openunmix.transforms
    import openunmix.utils

    for module in (openunmix.utils, openunmix.transforms):
        with pytest.raises(TorchaudioStubError, match="Open-Unmix"):
            module.torchaudio.transforms  # noqa: B018


def _tiny_peer() -> PeerModel:
    """A test-only peer built from torch alone: a 1x1 convolution from 2 to 4x2 channels."""
    conv = torch.nn.Conv1d(2, 8, 1)

    def run(mix: torch.Tensor) -> torch.Tensor:
        return conv(mix).reshape(1, 4, 2, -1)

    return PeerModel(conv, RATE, ("drums", "bass", "other", "vocals"), run, lambda s: 0.0)


def test_a_peer_that_cannot_be_imported_is_reported_and_the_rest_still_run() -> None:
    missing = PeerSpec(
        name="missing",
        description="a peer whose package is not installed",
        modules=("livestems_no_such_peer_package.model",),
        load=_tiny_peer,
    )
    tiny = PeerSpec(name="tiny", description="test-only", modules=("torch",), load=_tiny_peer)
    threads = torch.get_num_threads()
    results = measure_peers(_noise(12.0), quick=True, threads=1, peers=(missing, tiny))
    assert torch.get_num_threads() == threads
    assert [peer.name for peer in results] == ["missing", "tiny"]
    absent, present = results
    assert not absent.loaded
    assert "livestems_no_such_peer_package" in absent.reason
    assert absent.real_time_factor is None and absent.parameters is None
    assert present.loaded and present.reason == ""
    assert present.audio_seconds == pytest.approx(peers_module.QUICK_SECONDS)
    assert present.parameters == 2 * 8 + 8
    assert present.real_time_factor is not None and present.real_time_factor > 0
    assert present.weights == "random" and present.threads == 1
    assert present.to_dict()["name"] == "tiny"


def test_measure_peers_refuses_mono() -> None:
    with pytest.raises(ValueError, match="stereo"):
        measure_peers(np.zeros(100, np.float32), quick=True, peers=())


def test_the_entry_point_finds_measure_peers() -> None:
    entries = {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if "torch-peers" not in entries:
        pytest.skip("livestems is not installed from this checkout's pyproject.toml")
    assert entries["torch-peers"].load() is measure_peers


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement)[0].lower()


def _pip_commands(setup: str) -> list[str]:
    """setup.sh's pip commands, continuation lines joined."""
    commands = setup.replace("\\\n", " ").splitlines()
    return [line for line in commands if '"${pip[@]}"' in line]


def test_setup_installs_the_bench_extra_and_nothing_that_brings_torch() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    bench = pyproject["project"]["optional-dependencies"]["bench"]
    names = {_name(requirement) for requirement in bench}
    assert {"openunmix", "demucs"} <= names
    assert not names & {"torch", "torchaudio"}
    commands = _pip_commands((ROOT / "setup.sh").read_text())
    no_deps = " ".join(line for line in commands if "--no-deps" in line)
    with_deps = " ".join(line for line in commands if "--no-deps" not in line)
    for name in names:
        pattern = rf'"{re.escape(name)}[<>=!~"]'
        assert re.search(pattern, no_deps + with_deps), f"setup.sh does not install {name}"
        if re.search(pattern, with_deps):
            # Installed with its dependencies: it must not declare torch (when it is here).
            try:
                requires = metadata.requires(name) or []
            except metadata.PackageNotFoundError:
                continue
            declared = {_name(r) for r in requires if "extra ==" not in r}
            assert not declared & {"torch", "torchaudio"}, f"{name} would bring torch"
    for name in ("openunmix", "demucs", "julius"):  # they declare torch
        assert re.search(rf'"{name}[<>=!~"]', no_deps), f"setup.sh must install {name} --no-deps"
