"""Helpers shared by the test modules: signals, test doubles, small networks, model files.

The rule (``tests/test_helpers_rule.py`` checks it): a test module imports what it shares from
here, never from another test module or a ``conftest.py``. Fixtures live in the ``conftest.py``
of the folder that needs them, where pytest finds them (a fixture is never imported). Only
``networks.py`` imports torch at its top: import it after ``pytest.importorskip("torch")``.
"""
