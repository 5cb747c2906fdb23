"""The window's settings on disk (QSettings), stored by value: a device by its name, a model by
its path, a block size by its number; never by a list index, which a new device or model would
shift.

Thread contract: GUI thread only (QSettings is not shared with any other thread here).
"""

from __future__ import annotations

from dataclasses import fields, replace

from PySide6.QtCore import QSettings

from ..realtime.dsp.presets import PRESETS
from .session import BLOCK_SIZES, SessionSettings

ORGANISATION = "livestems"
APPLICATION = "livestems"
GROUP = "session"
MIDI_MAPPING_KEY = "midi/mapping"
METER_POINT_KEY = "window/meters"  # "post-fader" (the default) or "pre-fader"


def default_store() -> QSettings:
    return QSettings(ORGANISATION, APPLICATION)


def ini_store(path: str) -> QSettings:
    """Settings in one ini file (tests, and anyone who wants a portable set-up)."""
    return QSettings(path, QSettings.Format.IniFormat)


def load_session_settings(store: QSettings, fallback: SessionSettings) -> SessionSettings:
    """The stored settings; each missing or unusable value is ``fallback``'s."""
    settings = fallback
    for field in fields(SessionSettings):
        default = getattr(fallback, field.name)
        stored = store.value(f"{GROUP}/{field.name}", default)
        try:
            value = int(str(stored)) if isinstance(default, int) else str(stored)
        except ValueError:
            continue
        settings = replace(settings, **{field.name: value})  # type: ignore[arg-type]
    if settings.block_size not in BLOCK_SIZES:
        settings = replace(settings, block_size=fallback.block_size)
    if settings.preset not in PRESETS:
        settings = replace(settings, preset=fallback.preset)
    return settings


def save_session_settings(store: QSettings, settings: SessionSettings) -> None:
    for field in fields(SessionSettings):
        store.setValue(f"{GROUP}/{field.name}", getattr(settings, field.name))
    store.sync()


# -- the window's controls: pans, the click stem, tempo, transpose, snap, count-in ------------
# Stored by the stem's name (a pan belongs to "vocals", whatever its index in another model).

CONTROLS_GROUP = "controls"
CLICK_STRIP = "click"  # the click stem's name among the pans and the click's own keys


def load_control(store: QSettings, key: str, default: float | bool) -> float | bool:
    """A stored control (``controls/<key>``) of ``default``'s type; ``default`` when missing or
    unreadable."""
    stored = store.value(f"{CONTROLS_GROUP}/{key}", None)
    if stored is None:
        return default
    text = str(stored).strip().lower()
    if isinstance(default, bool):
        return text in ("true", "1") if text in ("true", "false", "1", "0") else default
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value == value else default  # NaN: unusable


def save_control(store: QSettings, key: str, value: float | bool) -> None:
    store.setValue(f"{CONTROLS_GROUP}/{key}", value)
