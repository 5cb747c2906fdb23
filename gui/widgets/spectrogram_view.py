"""A live scrolling spectrogram of one stem: a ring image on a log-frequency axis in a pyqtgraph
plot.

Thread contract: GUI thread only. ``push`` takes a spectrum that the window's timer copied out
of the engine's telemetry (never the engine's own array) and ``paint_image`` asks Qt to repaint
the picture; the two are separate steps so that several new columns cost one repaint.

The image has fixed levels (``LEVELS_DB``) and a 256-entry lookup table, so a quiet passage
looks quiet instead of being stretched to full contrast. Rows are log-spaced in frequency (what
a musician reads: octaves are equally tall); each row takes the telemetry bin nearest its
frequency, an index computed once.

Painting costs only what changed (the window paints four of these 40 times a second): a new
column is coloured once, when it is pushed (96 pixels through the lookup table), into a
mirrored ring of colours in which every column is stored twice, so that the newest
``N_COLUMNS`` are always one contiguous window (friture's mirrored ring). Scrolling moves that
window's start; the picture is a QImage header over that window of the ring's memory, so no
image is re-coloured, copied or converted per frame. The colours are pyqtgraph's own for the
same levels and table (``colour_indices`` is its rescaling), so the picture looks as it did
when pyqtgraph's ImageItem coloured the whole image every frame. The pixels are opaque RGB32,
which Qt scales onto the screen on its fast path (its generic path, which the ImageItem's
8-bit indexed image took, is about three times slower and may put the boundary between two
rows one screen pixel away). The axis is repainted from a cached pixmap, and the view tells Qt
that it paints all it shows, so that nothing under it is repainted.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

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


def colour_indices(db: np.ndarray | float, n_colours: int = 256) -> np.ndarray:
    """Each level's entry in the lookup table, as pyqtgraph's ImageItem picks it for float data
    with ``LEVELS_DB`` and a table of ``n_colours``: ``(db - low) * n_colours / (high - low)``
    in float32, clipped to the table and truncated. [shape=db.shape, uint8]"""
    low, high = LEVELS_DB
    scaled = (np.asarray(db, dtype=np.float32) - np.float32(low)) * np.float32(
        n_colours / (high - low)
    )
    return np.clip(scaled, 0, n_colours - 1).astype(np.uint8)


def rgb32_table() -> np.ndarray:
    """The lookup table as QImage's RGB32 pixels (0xffRRGGBB). [shape=(256,), uint32]"""
    table = lookup_table().astype(np.uint32)
    return np.uint32(0xFF000000) | (table[:, 0] << 16) | (table[:, 1] << 8) | table[:, 2]


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


class RingImageItem(pg.GraphicsObject):
    """The picture: ``N_COLUMNS`` x ``N_ROWS`` scene units (row 0, the lowest frequency, at
    y = 0: the bottom of the plot), drawn as pyqtgraph's ImageItem draws its image, from a
    window of a mirrored ring of RGB32 pixels.

    Args:
        ring: the ring, read in place, never copied (the caller keeps it alive and never
            reallocates it). [shape=(N_ROWS, 2 * N_COLUMNS), uint32]
    """

    def __init__(self, ring: np.ndarray) -> None:
        super().__init__()
        self._ring = ring.reshape(-1)  # a view: the same memory
        # One header per place the window can start, made once.
        self._windows = [self._window(start) for start in range(N_COLUMNS)]
        self._image = self._windows[0]

    def _window(self, start: int) -> QImage:
        # A QImage header over columns start .. start + N_COLUMNS of every row: it begins at
        # column start of row 0 and steps a whole ring row (2 * N_COLUMNS pixels) per row.
        return QImage(
            self._ring[start:].data, N_COLUMNS, N_ROWS, 2 * N_COLUMNS * 4,
            QImage.Format.Format_RGB32,
        )  # fmt: skip

    def show_from(self, start: int) -> None:
        """Show the ring's columns ``start`` to ``start + N_COLUMNS`` and repaint."""
        self._image = self._windows[start]
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0.0, 0.0, N_COLUMNS, N_ROWS)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.drawImage(self.boundingRect(), self._image)


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
        # The view paints its background over every pixel it repaints: Qt need not paint the
        # strip and the window under it first.
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(120, 140)
        bin_hz = sample_rate / SPECTRUM_SIZE
        n_bins = SPECTRUM_SIZE // 2 + 1
        self._row_bins = np.clip(
            np.round(row_frequencies(sample_rate) / bin_hz).astype(np.intp), 0, n_bins - 1
        )
        self._colours = rgb32_table()
        # Mirrored rings: column c is stored at c and c + N_COLUMNS, so the newest N_COLUMNS
        # are [start, start + N_COLUMNS), oldest first. Row = frequency (low first).
        # [shape=(N_ROWS, 2 * N_COLUMNS)]: dB, and the same as RGB32 pixels
        self._levels = np.full((N_ROWS, 2 * N_COLUMNS), LEVELS_DB[0], dtype=np.float32)
        self._pixels = np.full((N_ROWS, 2 * N_COLUMNS), self._colours[0], dtype=np.uint32)
        self._start = 0
        self._dirty = False
        self.image_item = RingImageItem(self._pixels)
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
        # The axis's ticks reach over the picture, so each repaint of the picture repaints
        # them: from a pixmap of the axis that Qt keeps (until the axis changes), not by
        # replaying its drawing.
        left.setCacheMode(pg.GraphicsObject.CacheMode.DeviceCoordinateCache)
        if title:
            plot.setTitle(title, size="9pt")

    def push(self, spectrum_db: np.ndarray, n_columns: int = 1) -> None:
        """Scroll left by ``n_columns`` and fill them with ``spectrum_db``
        [shape=(SPECTRUM_SIZE // 2 + 1,)], a stem's spectrum in dB."""
        n_columns = min(n_columns, N_COLUMNS)
        if n_columns <= 0:
            return
        column = spectrum_db[self._row_bins].astype(np.float32)
        pixels = self._colours[colour_indices(column)]
        # The oldest n_columns slots, and their mirrors, become the newest.
        for slot in range(self._start, self._start + n_columns):
            slot %= N_COLUMNS
            for mirror in (slot, slot + N_COLUMNS):
                self._levels[:, mirror] = column
                self._pixels[:, mirror] = pixels
        self._start = (self._start + n_columns) % N_COLUMNS
        self._dirty = True

    def clear_columns(self) -> None:
        self._levels.fill(LEVELS_DB[0])
        self._pixels.fill(self._colours[colour_indices(LEVELS_DB[0])])
        self._dirty = True

    def paint_image(self) -> None:
        """Ask for a repaint of the picture if it changed since the last one."""
        if self._dirty:
            self.image_item.show_from(self._start)
            self._dirty = False

    def image_data(self) -> np.ndarray:
        """A copy of what is shown, oldest column first. [shape=(N_ROWS, N_COLUMNS)], dB"""
        return self._levels[:, self._start : self._start + N_COLUMNS].copy()

    def pixels(self) -> np.ndarray:
        """A copy of the colours shown, as ``image_data``. [shape=(N_ROWS, N_COLUMNS)], RGB32"""
        return self._pixels[:, self._start : self._start + N_COLUMNS].copy()
