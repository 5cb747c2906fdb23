"""Fuzzing what a user hands in (issue 15): hypothesis settings bounded for CI, values that broke
loaders before, and the property every loader keeps (it loads, or refuses in one sentence).

``LIVESTEMS_FUZZ_EXAMPLES`` sets the examples per test (default 25); by hand, a longer run:
``LIVESTEMS_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/realtime/test_fuzz.py``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from livestems.realtime.errors import UserError

EXAMPLES = int(os.environ.get("LIVESTEMS_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def one_sentence(error: BaseException) -> None:
    """``error`` is a ``UserError`` whose text is one line ending in a full stop."""
    assert isinstance(error, UserError), f"{type(error).__name__}: {error}"
    text = str(error)
    assert text and "\n" not in text and text.endswith("."), text


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)

#: Values that broke loaders before: zero, negative, huge, not finite, empty, paths, wrong types.
EDGE_VALUES = st.sampled_from(
    [0, -1, 1, -44100, 2**31 - 1, 10**12, 10**9, float("inf"), float("nan"), 0.5, True, None]
    + ["", "../../x", "/tmp/x", "44100", [], {}, [0], ["a", "a"]]
)
VALUES = st.one_of(EDGE_VALUES, st.sampled_from([0, -1, float("inf")]), JSON_VALUES)
