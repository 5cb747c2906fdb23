"""The spectrogram paints only its new columns (a mirrored ring of colours) and still shows what
the whole-image repaint showed: the same levels column for column, the same colours as
pyqtgraph's ImageItem gives those levels, and the same picture on screen."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from livestems.gui.widgets.spectrogram_view import (
    LEVELS_DB,
    N_COLUMNS,
    N_ROWS,
    SpectrogramView,
    frequency_ticks,
    lookup_table,
)
from livestems.realtime.engine.telemetry import SPECTRUM_SIZE

SAMPLE_RATE = 44100
N_BINS = SPECTRUM_SIZE // 2 + 1


def rows_of(spectrum_db: np.ndarray) -> np.ndarray:
    """The column a spectrum becomes, worked out here: each of the N_ROWS log-spaced rows from
    40 Hz to Nyquist takes the bin nearest its frequency."""
    hertz = 40.0 * (SAMPLE_RATE / 2.0 / 40.0) ** (np.arange(N_ROWS) / (N_ROWS - 1))
    bins = np.clip(np.rint(hertz * SPECTRUM_SIZE / SAMPLE_RATE).astype(int), 0, N_BINS - 1)
    return spectrum_db[bins].astype(np.float32)


def pushes(seed: int, n: int) -> list[tuple[np.ndarray, int]]:
    """Spectra over and beyond the levels, and column counts from 0 to past the image's width."""
    rng = np.random.default_rng(seed)
    counts = [*rng.integers(0, 5, n - 2), N_COLUMNS + 7, 3]
    return [(rng.uniform(-130.0, 20.0, N_BINS), int(count)) for count in counts]


def as_rgb32(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), np.uint32)
    return pixels.reshape(image.height(), image.bytesPerLine() // 4)[:, : image.width()].copy()


class WholeImageView(pg.PlotWidget):
    """The spectrogram as it was: the whole image scrolled and handed to a pyqtgraph ImageItem
    (which colours all of it through the lookup table) on every paint."""

    def __init__(self) -> None:
        super().__init__()
        self.setBackground("#101018")
        self.image = np.full((N_ROWS, N_COLUMNS), LEVELS_DB[0], dtype=np.float32)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setLookupTable(lookup_table())
        self.item.setLevels(LEVELS_DB)
        plot = self.getPlotItem()
        plot.addItem(self.item)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.hideAxis("bottom")
        plot.setXRange(0, N_COLUMNS, padding=0)
        plot.setYRange(0, N_ROWS, padding=0)
        left = plot.getAxis("left")
        left.setTicks([frequency_ticks(SAMPLE_RATE), []])
        left.setWidth(34)
        plot.setTitle("vocals", size="9pt")

    def push(self, spectrum_db: np.ndarray, n_columns: int) -> None:
        n_columns = min(n_columns, N_COLUMNS)
        if n_columns > 0:
            self.image = np.concatenate(
                [self.image[:, n_columns:], np.repeat(rows_of(spectrum_db)[:, None], n_columns, 1)],
                axis=1,
            )
        self.item.setImage(self.image, autoLevels=False, levels=LEVELS_DB)

    def colours(self) -> np.ndarray:
        """The ImageItem's own colouring of the image. [shape=(N_ROWS, N_COLUMNS)], RGB32"""
        self.item.render()
        return as_rgb32(self.item.qimage)


def test_pushed_columns_scroll_as_the_whole_image_did(qtbot: QtBot) -> None:
    view = SpectrogramView(SAMPLE_RATE, "vocals")
    qtbot.addWidget(view)
    expected = np.full((N_ROWS, N_COLUMNS), LEVELS_DB[0], dtype=np.float32)
    assert np.array_equal(view.image_data(), expected)
    for spectrum, count in pushes(seed=3, n=300):
        view.push(spectrum, count)
        view.paint_image()
        if count > 0:
            new = np.repeat(rows_of(spectrum)[:, None], min(count, N_COLUMNS), axis=1)
            expected = np.concatenate([expected[:, new.shape[1] :], new], axis=1)
        assert np.array_equal(view.image_data(), expected)
    view.clear_columns()
    assert np.all(view.image_data() == LEVELS_DB[0])
    assert len(np.unique(view.pixels())) == 1


def test_the_colours_are_pyqtgraphs_for_the_same_levels(qtbot: QtBot) -> None:
    view, old = SpectrogramView(SAMPLE_RATE, "vocals"), WholeImageView()
    qtbot.addWidget(view)
    qtbot.addWidget(old)
    # Levels on and around every boundary between two of the table's colours, and beyond both
    # ends: each column one spectrum, each row another level.
    edges = np.linspace(LEVELS_DB[0], LEVELS_DB[1], 257)
    levels = np.concatenate([edges, edges - 1e-4, edges + 1e-4, [-300.0, 40.0, -90.0001]])
    rng = np.random.default_rng(5)
    for _ in range(N_COLUMNS):
        spectrum = rng.choice(levels, N_BINS)
        view.push(spectrum, 1)
        old.push(spectrum, 1)
    assert np.array_equal(view.image_data(), old.image)
    assert np.array_equal(view.pixels(), old.colours())


def test_the_picture_on_screen_is_the_one_the_whole_image_gave(qtbot: QtBot) -> None:
    view, old = SpectrogramView(SAMPLE_RATE, "vocals"), WholeImageView()
    for widget in (view, old):
        qtbot.addWidget(widget)
        widget.resize(260, 300)
        widget.show()
    for spectrum, count in pushes(seed=11, n=120):
        view.push(spectrum, count)
        old.push(spectrum, count)
    view.paint_image()
    qtbot.wait(50)
    new_pixels, old_pixels = as_rgb32(grab(view)), as_rgb32(grab(old))
    assert new_pixels.shape == old_pixels.shape
    # Outside the picture (axis, ticks, title, background): the same pixels.
    rect = view.mapFromScene(view.image_item.sceneBoundingRect()).boundingRect()
    left, right = rect.left(), rect.right() + 1
    outside = np.ones(new_pixels.shape, dtype=bool)
    outside[rect.top() : rect.bottom() + 1, left:right] = False
    assert np.array_equal(new_pixels[outside], old_pixels[outside])
    # Inside: Qt scales the opaque ring on its fast path, the indexed image went the generic
    # way, so the boundary between two image rows may fall one screen pixel apart.
    new_picture, old_picture = new_pixels[:, left:right], old_pixels[:, left:right]
    differing = np.flatnonzero((new_picture != old_picture).any(axis=1))
    assert differing.size <= 0.02 * new_pixels.shape[0], differing
    for row in differing:
        neighbours = [old_picture[r] for r in (row - 1, row + 1)]
        assert any(np.array_equal(new_picture[row], other) for other in neighbours), row


def grab(widget: QWidget) -> QImage:
    return widget.grab().toImage()


@pytest.mark.parametrize("n_columns", [0, -3])
def test_nothing_new_repaints_nothing(qtbot: QtBot, n_columns: int) -> None:
    view = SpectrogramView(SAMPLE_RATE)
    qtbot.addWidget(view)
    before = view.image_data()
    view.push(np.zeros(N_BINS), n_columns)
    assert not view._dirty and np.array_equal(view.image_data(), before)
