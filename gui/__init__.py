"""livestems.gui: the PySide6 + pyqtgraph window over the engine. Never imports torch."""
