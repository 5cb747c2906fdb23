"""`livestems devices` against a real JACK dummy server."""

from __future__ import annotations

import pytest

from livestems.realtime.backends.devices import execution_providers, list_audio_devices
from livestems.realtime.commands.cli import main


def test_jack_dummy_server_is_listed(jack_server, capsys: pytest.CaptureFixture[str]) -> None:
    jack_devices = [d for d in list_audio_devices() if d.host_api.startswith("JACK")]
    assert jack_devices, "PortAudio does not see the running JACK server"
    assert jack_devices[0].max_output_channels >= 2
    assert jack_devices[0].default_sample_rate == jack_server.sample_rate
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "JACK Audio Connection Kit" in out
    assert "CPUExecutionProvider" in out


def test_cpu_provider_is_always_there() -> None:
    assert "CPUExecutionProvider" in execution_providers()
