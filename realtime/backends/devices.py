"""What this machine offers: audio devices (through PortAudio) and onnxruntime providers.

Thread contract: main thread only, and never while a stream runs: PortAudio's device list is
read by (re)initialising the library, which would pull the devices from under a live stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ..errors import UserError


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    is_default_input: bool
    is_default_output: bool


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as error:  # raised at import when libportaudio is missing
        raise UserError(
            f"PortAudio is not installed ({error}): install it with "
            "'apt-get install libportaudio2' (or your system's package)."
        ) from error
    return sounddevice


def list_audio_devices(rescan: bool = True) -> list[AudioDevice]:
    """Every device PortAudio sees now; ``rescan`` re-reads the list (a JACK server started
    after the import is seen only then)."""
    sd = _sounddevice()
    if rescan:
        sd._terminate()
        sd._initialize()
    host_apis = sd.query_hostapis()
    default_in, default_out = sd.default.device
    devices = []
    for info in sd.query_devices():
        devices.append(
            AudioDevice(
                index=info["index"],
                name=info["name"],
                host_api=host_apis[info["hostapi"]]["name"],
                max_input_channels=info["max_input_channels"],
                max_output_channels=info["max_output_channels"],
                default_sample_rate=info["default_samplerate"],
                is_default_input=info["index"] == default_in,
                is_default_output=info["index"] == default_out,
            )
        )
    return devices


def execution_providers() -> list[str]:
    """The onnxruntime execution providers this installation really has."""
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def onnxruntime_distributions() -> list[str]:
    """Installed distributions that provide the ``onnxruntime`` module (one is right; two
    overwrite each other's files)."""
    from importlib import metadata

    names = ("onnxruntime", "onnxruntime-gpu")
    installed = []
    for name in names:
        try:
            installed.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return installed
