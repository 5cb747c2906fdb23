"""A live scrolling spectrogram of one stem: a pyqtgraph ImageItem on a log-frequency axis.

Thread contract: GUI thread only. ``push`` takes a spectrum that the window's timer copied out
of the engine's telemetry (never the engine's own array) and ``paint_image`` hands the image to
pyqtgraph; the two are separate steps so that several new columns cost one repaint.

The image has fixed levels (``LEVELS_DB``) and a 256-entry lookup table, so a quiet passage
looks quiet instead of being stretched to full contrast, and so that pyqtgraph never scans the
image for its range. Rows are log-spaced in frequency (what a musician reads: octaves are
equally tall); each row takes the telemetry bin nearest its frequency, an index computed once.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ...realtime.engine.telemetry import SPECTRUM_SIZE

LEVELS_DB = (-90.0, -10.0)
N_ROWS = 96
N_COLUMNS = 160  # about 3.7 s at one column per 1024 samples at 44.1 kHz
LOWEST_HZ = 40.0
TICKS_HZ = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def lookup_table() -> np.ndarray:
    """256 RGBA colours, dark blue through magenta and orange to pale yellow.
    [shape=(256, 4), uint8]"""
    stops = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    colours = np.array(
        [[8, 8, 24], [48, 18, 110], [170, 40, 120], [245, 130, 40], [252, 250, 190]], dtype=float
    )
    position = np.linspace(0.0, 1.0, 256)
    table = np.empty((256, 4), dtype=np.uint8)
    for channel in range(3):
        table[:, channel] = np.round(np.interp(position, stops, colours[:, channel]))
    table[:, 3] = 255
    return table


def row_frequencies(sample_rate: int, n_rows: int = N_ROWS) -> np.ndarray:
    """The centre frequency of each image row, log-spaced up to Nyquist. [shape=(n_rows,)]"""
    return np.geomspace(LOWEST_HZ, sample_rate / 2.0, n_rows)


def frequency_ticks(sample_rate: int, n_rows: int = N_ROWS) -> list[tuple[float, str]]:
    """(row position, label) for round frequencies inside the displayed range."""
    low, high = np.log(LOWEST_HZ), np.log(sample_rate / 2.0)
    ticks = []
    for hertz in TICKS_HZ:
        if LOWEST_HZ <= hertz <= sample_rate / 2.0:
            row = (np.log(hertz) - low) / (high - low) * (n_rows - 1) + 0.5
            label = f"{hertz // 1000}k" if hertz >= 1000 else str(hertz)
            ticks.append((float(row), label))
    return ticks


class SpectrogramView(pg.PlotWidget):
    """(PlotWidget copies ``clear``, ``addItem`` and others from its PlotItem onto each instance,
    so this class's own methods have names of their own.)

    Args:
    sample_rate: the stems' rate (sets the frequency axis).
    title: the stem's name.
    """

    def __init__(self, sample_rate: int, title: str = "") -> None:
        super().__init__()
        self.setBackground("#101018")
        self.setMinimumSize(120, 140)
        bin_hz = sample_rate / SPECTRUM_SIZE
        n_bins = SPECTRUM_SIZE // 2 + 1
        self._row_bins = np.clip(
            np.round(row_frequencies(sample_rate) / bin_hz).astype(np.intp), 0, n_bins - 1
        )
        # [shape=(N_ROWS, N_COLUMNS)]: row = frequency (low at the bottom), column = time.
        self._image = np.full((N_ROWS, N_COLUMNS), LEVELS_DB[0], dtype=np.float32)
        self._dirty = True
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setLookupTable(lookup_table())
        self.image_item.setLevels(LEVELS_DB)
        plot = self.getPlotItem()
        plot.addItem(self.image_item)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.hideAxis("bottom")
        plot.setXRange(0, N_COLUMNS, padding=0)
        plot.setYRange(0, N_ROWS, padding=0)
        left = plot.getAxis("left")
        left.setTicks([frequency_ticks(sample_rate), []])
        left.setWidth(34)
        if title:
            plot.setTitle(title, size="9pt")
        self.paint_image()

    def push(self, spectrum_db: np.ndarray, n_columns: int = 1) -> None:
        """Scroll left by ``n_columns`` and fill them with ``spectrum_db``
        [shape=(SPECTRUM_SIZE // 2 + 1,)], a stem's spectrum in dB."""
        n_columns = min(n_columns, N_COLUMNS)
        if n_columns <= 0:
            return
        image = self._image
        image[:, :-n_columns] = image[:, n_columns:]
        image[:, -n_columns:] = spectrum_db[self._row_bins, None]
        self._dirty = True

    def clear_columns(self) -> None:
        self._image.fill(LEVELS_DB[0])
        self._dirty = True

    def paint_image(self) -> None:
        """Hand the image to pyqtgraph if it changed since the last paint."""
        if self._dirty:
            self.image_item.setImage(self._image, autoLevels=False, levels=LEVELS_DB)
            self._dirty = False

    def image_data(self) -> np.ndarray:
        """A copy of what is shown. [shape=(N_ROWS, N_COLUMNS)], dB"""
        return self._image.copy()
