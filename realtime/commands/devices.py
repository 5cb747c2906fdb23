"""``livestems devices``: audio devices (through PortAudio) and onnxruntime providers.

Thread contract: main thread only, and never while a stream runs (see ``backends/devices.py``).
"""

from __future__ import annotations

import argparse

from ..backends.devices import execution_providers, list_audio_devices, onnxruntime_distributions
from .command import Command


def _configure(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def _run(args: argparse.Namespace) -> int:
    del args
    devices = list_audio_devices()
    print("Audio devices (PortAudio):")
    if not devices:
        print(
            "  none: no sound card, and no JACK or PulseAudio server running "
            "(for a test server: jackd -d dummy)"
        )
    for device in devices:
        marks = ("<" if device.is_default_input else " ") + (
            ">" if device.is_default_output else " "
        )
        print(
            f" {marks}{device.index:>3} {device.name} ({device.host_api}): "
            f"{device.max_input_channels} in, {device.max_output_channels} out, "
            f"{device.default_sample_rate:g} Hz"
        )
    distributions = onnxruntime_distributions()
    if len(distributions) > 1:
        print(
            f"warning: {' and '.join(distributions)} are both installed and overwrite each "
            "other; keep one (./setup.sh --gpu installs the GPU build alone)."
        )
    print("onnxruntime execution providers: " + ", ".join(execution_providers()))
    return 0


COMMAND = Command(
    help="list audio devices and onnxruntime execution providers",
    configure=_configure,
    run=_run,
)
