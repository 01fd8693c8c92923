"""The window: PySide6 widgets, models, the worker and preview threads.

Importing this package first guards Python's ``None``/``True``/``False`` against the
reference-counting faults of PySide6 6.12.0 (see :mod:`netcore_desktop.ui.qt_compat`); the
guard needs no Qt import, so the Qt-free preview helper can import from here too.
"""

from netcore_desktop.ui.qt_compat import guard_singletons

guard_singletons()
