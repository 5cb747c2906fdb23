#!/usr/bin/env bash
# Set up livestems on this machine: system libraries, a virtual environment in .venv, and the
# package in it (editable, so the checkout is what runs).
#
#   ./setup.sh         the runtime: play, separate, the window (no torch)
#   ./setup.sh --dev   also training and export (the CPU build of torch 2.13.0) and the test tools
#   ./setup.sh --gpu   (with or without --dev) onnxruntime-gpu instead of onnxruntime, for NVIDIA
#                      machines with CUDA 12 or 13: both own the module `onnxruntime`, so never both
#
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

dev=0
gpu=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --gpu) gpu=1 ;;
    *) echo "setup.sh: unknown option $arg (use --dev, --gpu or nothing)" >&2; exit 2 ;;
  esac
done

# System libraries: PortAudio and libsndfile for audio, ffmpeg for MUSDB's .stem.mp4, and JACK,
# whose dummy back-end is the real audio server the tests (and a machine with no sound card) use;
# jackd2 brings libjack (libjack-jackd2-0), which the JACK back-end loads through JACK-Client.
system_packages=(libportaudio2 libsndfile1 ffmpeg jackd2)
# The synthetic multitrack generator (training and tests): FluidSynth and its GM sound font.
[ "$dev" -eq 0 ] || system_packages+=(fluidsynth fluid-soundfont-gm)
# Songs from real compositions (models/synth/midi.py): free MIDI files (OpenTTD's OpenMSX set,
# GPL-2.0; Planet Blupi's soundtrack, GPL-3+) and MuseScore General, the best free GM sound font
# Debian has (MIT), beside FluidR3.
[ "$dev" -eq 0 ] || system_packages+=(openttd-openmsx planetblupi-music-midi
  musescore-general-soundfont)
# The window (PySide6's Qt, offscreen or on X11) and MIDI (python-rtmidi loads libasound).
system_packages+=(libegl1 libgl1 libfontconfig1 fonts-dejavu-core libdbus-1-3 libglib2.0-0
  libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1
  libasound2)
# Tests and the screenshot script: a virtual X display.
[ "$dev" -eq 0 ] || system_packages+=(xvfb)
# The web page's tests and screenshots (livestems serve): Debian's browser and its WebDriver.
[ "$dev" -eq 0 ] || system_packages+=(chromium chromium-driver)
if command -v dpkg-query >/dev/null; then
  missing=()
  for package in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup.sh: installing ${missing[*]}"
    # jackd2 asks about real-time priority; the non-interactive default (no) is what tests want.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup.sh: not a Debian-like system; install PortAudio, libsndfile, ffmpeg and JACK yourself" >&2
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet)

if [ "$dev" -eq 1 ]; then
  # torch first and pinned: asked for by an open range, pip would fetch the newest CUDA build
  # (several GB). With 2.13.0 installed, the 'train' extra's range installs nothing more.
  "${pip[@]}" "torch==2.13.0"
  "${pip[@]}" -e ".[train,dev,practice,serve]"
  # The benchmark's peers, the 'bench' extra of pyproject.toml, one by one: openunmix, demucs and
  # julius declare torch (openunmix torchaudio too, and no torchaudio build matches torch 2.13.0),
  # so they and the pure-Python modules their model code imports go in with --no-deps; matplotlib
  # (the plot) needs no torch and is installed as usual. Already installed: nothing happens.
  "${pip[@]}" --no-deps "openunmix>=1.3,<1.4" "demucs>=4.1,<4.2" "julius>=0.2.3" \
    "einops>=0.6" "tqdm>=4.60"
  "${pip[@]}" "matplotlib>=3.8"
else
  "${pip[@]}" -e ".[practice,serve]"
fi
if [ "$gpu" -eq 1 ]; then
  # The project depends on onnxruntime (CPU); swap it for the GPU build, which provides the same
  # module with the CUDA execution provider. Re-run ./setup.sh --gpu after any later pip install
  # of livestems, which would bring the CPU build back.
  # Both builds write the same files: remove both, then install the GPU build alone.
  .venv/bin/python -m pip uninstall --quiet --yes onnxruntime onnxruntime-gpu
  "${pip[@]}" onnxruntime-gpu
fi
# librosa's beat tracker compiles its numba kernels at first use, about 30 s on 2 cores: once
# here, into numba's cache on disk, rather than while the first song waits for its beat grid.
# A warm-up, not a requirement: if it fails, the first grid only takes longer.
.venv/bin/python -m livestems.realtime.practice.beat_grid_child --compile \
  || echo "setup.sh: librosa's kernels are not compiled ahead; the first beat grid will be slow" >&2
.venv/bin/livestems devices | tail -n 1
echo "setup.sh: ready; run .venv/bin/livestems"
