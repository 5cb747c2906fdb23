"""The Settings dialog: audio devices, block size, model, preset and execution provider.

Thread contract: GUI thread only; it lists devices (PortAudio) and model files (a folder scan)
when it opens, and returns the chosen values. It never touches the engine: the window applies
the result (a clean reload) and stores it by value.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QPushButton,
    QWidget,
)

from ...realtime.dsp.presets import PRESETS
from ...realtime.errors import UserError
from ...realtime.runtime.catalog import DEFAULT_LIVE_INPUT_MODEL, DEFAULT_MODEL, model_files
from ..session import BLOCK_SIZES, BUNDLED, IDENTITY, SessionSettings

DEFAULT_DEVICE = "(default)"


def _device_names(output: bool) -> list[str]:
    """Names of PortAudio's devices that can play (``output``) or record; none when PortAudio is
    missing (the stream itself will then say so in one sentence)."""
    from ...realtime.backends.devices import list_audio_devices

    try:
        devices = list_audio_devices(rescan=False)
    except UserError:
        return []
    return [
        device.name
        for device in devices
        if (device.max_output_channels if output else device.max_input_channels) >= 2
    ]


class SettingsDialog(QDialog):
    """Args:
    settings: the values shown at first.
    parent: the window.
    """

    def __init__(self, settings: SessionSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("livestems settings")
        self.output_device = self._combo([DEFAULT_DEVICE, *_device_names(True)])
        self.input_device = self._combo([DEFAULT_DEVICE, *_device_names(False)])
        self.block_size = self._combo([str(size) for size in BLOCK_SIZES])
        self.model = QComboBox()
        self.model.addItem(
            f"default ({DEFAULT_MODEL} for a song, {DEFAULT_LIVE_INPUT_MODEL} for the input)",
            BUNDLED,
        )
        self.model.addItem("identity (dry: no separation)", IDENTITY)
        for origin, path in model_files():
            self.model.addItem(f"{path.stem} ({origin})", str(path))
        browse = QPushButton("Other model file...")
        browse.clicked.connect(self._browse_model)
        self.preset = self._combo(list(PRESETS))
        self.provider = self._combo(["auto", "cpu", "cuda"])

        self._select(self.output_device, settings.output_device or DEFAULT_DEVICE)
        self._select(self.input_device, settings.input_device or DEFAULT_DEVICE)
        self._select(self.block_size, str(settings.block_size))
        self._select_model(settings.model)
        self._select(self.preset, settings.preset)
        self._select(self.provider, settings.provider)
        self.model.currentIndexChanged.connect(self._preset_follows_model)
        self._preset_follows_model()

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Output device", self.output_device)
        form.addRow("Input device (live)", self.input_device)
        form.addRow("Device block (frames)", self.block_size)
        form.addRow("Model", self.model)
        form.addRow("", browse)
        form.addRow("Preset (identity model)", self.preset)
        form.addRow("Execution provider", self.provider)
        form.addRow(buttons)

    @staticmethod
    def _combo(items: list[str]) -> QComboBox:
        combo = QComboBox()
        combo.addItems(items)
        return combo

    @staticmethod
    def _select(combo: QComboBox, text: str) -> None:
        """Select ``text``, adding it when this machine does not list it (a device that is
        unplugged now is kept, not silently replaced by whatever sits at its old index)."""
        index = combo.findText(text)
        if index < 0:
            combo.addItem(text)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    def _select_model(self, path: str) -> None:
        index = self.model.findData(path)
        if index < 0:
            self.model.addItem(path, path)
            index = self.model.count() - 1
        self.model.setCurrentIndex(index)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "ONNX models (*.onnx)")
        if path:
            self._select_model(path)

    def _preset_follows_model(self) -> None:
        # A model file brings its own preset; only the identity model lets the user choose.
        self.preset.setEnabled(self.model.currentData() == IDENTITY)

    def chosen(self) -> SessionSettings:
        def device(combo: QComboBox) -> str:
            text = combo.currentText()
            return "" if text == DEFAULT_DEVICE else text

        return SessionSettings(
            model=str(self.model.currentData()),
            preset=self.preset.currentText(),
            provider=self.provider.currentText(),
            output_device=device(self.output_device),
            input_device=device(self.input_device),
            block_size=int(self.block_size.currentText()),
        )
