"""``?`` shows every key the window answers to, over the window; ``?`` again or Esc closes it.
Every key the window's key handler takes, and every menu shortcut, is on the list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from pytestqt.qtbot import QtBot

from livestems.gui.session import IDENTITY, SessionSettings
from livestems.gui.window import LivestemsWindow
from tests.helpers.gui import make_window

SHIFTED_DIGITS = {Qt.Key.Key_Exclam: "1", Qt.Key.Key_At: "2", Qt.Key.Key_NumberSign: "3",
                  Qt.Key.Key_Dollar: "4"}  # fmt: skip
CANDIDATE_KEYS = [
    *(Qt.Key(code) for code in range(Qt.Key.Key_Space.value, Qt.Key.Key_AsciiTilde.value + 1)),
    *(Qt.Key(Qt.Key.Key_F1.value + n) for n in range(12)),
    Qt.Key.Key_Escape, Qt.Key.Key_Tab, Qt.Key.Key_Backspace, Qt.Key.Key_Return,
    Qt.Key.Key_Enter, Qt.Key.Key_Insert, Qt.Key.Key_Delete, Qt.Key.Key_Home, Qt.Key.Key_End,
    Qt.Key.Key_Left, Qt.Key.Key_Up, Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_PageUp,
    Qt.Key.Key_PageDown,
]  # fmt: skip


@pytest.fixture
def songless_window(qtbot: QtBot, settings_path: Path) -> Iterator[LivestemsWindow]:
    window = make_window(qtbot, settings_path, SessionSettings(model=IDENTITY), None, False)
    yield window
    window.shutdown()


def listed_keys(window: LivestemsWindow) -> set[str]:
    """Every key name the overlay lists (its rows' keys, split at commas)."""
    names: set[str] = set()
    for line in window.help_overlay.text().splitlines():
        keys = line.split("\t")[0]
        names.update(name.strip() for name in keys.split(","))
    return names


def name_of(key: Qt.Key, shifted: bool) -> str:
    """A key as the help names it: Shift+<digit> for a shifted digit (whatever the layout sends
    for it), else Qt's own name for the key (B, Space, Left, ?, Esc)."""
    if key in SHIFTED_DIGITS:
        return f"Shift+{SHIFTED_DIGITS[key]}"
    text = QKeySequence(key.value).toString(QKeySequence.SequenceFormat.PortableText)
    if shifted and text.isdigit():
        return f"Shift+{text}"
    return text


def test_question_mark_opens_the_help_and_question_mark_or_esc_closes_it(
    songless_window: LivestemsWindow, qtbot: QtBot
) -> None:
    window, overlay = songless_window, songless_window.help_overlay
    assert not overlay.isVisible()
    focus = window.strips[0].fader  # the keys are the window's whatever has the focus
    qtbot.keyClick(focus, Qt.Key.Key_Question, Qt.KeyboardModifier.ShiftModifier)
    assert overlay.isVisible()
    assert overlay.geometry() == window.rect()  # over the whole window
    middle, centre = overlay.panel.geometry().center(), window.rect().center()
    assert abs(middle.x() - centre.x()) <= 2 and abs(middle.y() - centre.y()) <= 2
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not overlay.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Question, Qt.KeyboardModifier.ShiftModifier)
    assert overlay.isVisible()
    window.resize(window.width() + 120, window.height() + 60)
    qtbot.waitUntil(lambda: overlay.geometry() == window.rect())
    qtbot.keyClick(window, Qt.Key.Key_Question, Qt.KeyboardModifier.ShiftModifier)
    assert not overlay.isVisible()
    # Esc with no help open is not the window's: it does nothing here.
    press = QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier)
    assert not window.handle_key(press)


def test_every_key_the_window_takes_is_listed(songless_window: LivestemsWindow) -> None:
    window = songless_window
    window.toggle_help()
    listed = listed_keys(window)
    taken: set[str] = set()
    for help_open in (False, True):
        for key in CANDIDATE_KEYS:
            for modifiers in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier):
                if window.help_overlay.isVisible() != help_open:
                    window.toggle_help()
                event = QKeyEvent(QEvent.Type.KeyPress, key, modifiers)
                if window.handle_key(event):
                    shifted = modifiers == Qt.KeyboardModifier.ShiftModifier
                    taken.add(name_of(key, shifted))
    # What the window is known to take (a handler that took nothing would pass vacuously).
    assert {"1", "4", "Shift+1", "Shift+4", "Space", "B", "L", "Left", "Right", "?", "Esc"} <= taken
    assert taken <= listed, taken - listed


def test_every_menu_shortcut_is_listed(songless_window: LivestemsWindow) -> None:
    window = songless_window
    window.toggle_help()
    rows = dict(line.split("\t") for line in window.help_overlay.text().splitlines())
    actions = window.findChildren(QAction)
    shortcuts = [action for action in actions if not action.shortcut().isEmpty()]
    assert len(shortcuts) >= 3  # open, quit, settings at least
    for action in shortcuts:
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert rows.get(keys) == action.text().replace("&", ""), keys


def test_a_click_on_the_help_closes_it(songless_window: LivestemsWindow, qtbot: QtBot) -> None:
    window = songless_window
    window.toggle_help()
    qtbot.mouseClick(window.help_overlay, Qt.MouseButton.LeftButton)
    assert not window.help_overlay.isVisible()
