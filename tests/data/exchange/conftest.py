"""Tiny simulated datasets of every kind, shared by the exchange tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import simulate_tiny


@pytest.fixture(scope="session")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per kind: 1 band with vector truth, 4 bands with int8 truth, light curves."""
    folder = tmp_path_factory.mktemp("exchange")
    return {
        "model_ii": simulate_tiny(folder, "model_ii", n_per_class=4),
        "lensfind_ground": simulate_tiny(folder, "lensfind_ground", n=12,
                                         lens_fraction=(0.5, 0.5, 0.5)),
        "transients_des_deep": simulate_tiny(folder, "transients_des_deep", n=8),
    }  # fmt: skip
