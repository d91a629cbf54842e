"""Trusted data for week 2's checks: the ODEs' exact solutions, computed here."""

import numpy as np
import pytest

# ODE number -> (equation, exact solution as text, exact solution u(x), u(0) = 1).
ODES = {
    1: ("du/dx = 2x", "x^2 + 1", lambda x: x ** 2 + 1),
    2: ("du/dx = x^2", "x^3/3 + 1", lambda x: x ** 3 / 3 + 1),
    3: ("du/dx = x^2 - 2x", "x^3/3 - x^2 + 1", lambda x: x ** 3 / 3 - x ** 2 + 1),
}
U0 = 1.0


@pytest.fixture(scope="session")
def training_range_grid():
    """401 points covering [0, 2] end to end (the models' training range), as a column.

    Float32 values, so the kernel evaluates the models at exactly these points,
    and the exact solution is computed here at the same points in float64.
    """
    return np.linspace(0, 2, 401, dtype=np.float32).reshape(-1, 1)
