"""The README's main job, end to end (slow: run with ``pytest -m slow``)."""

from __future__ import annotations

import pytest

from darklens.quickstart import QuickstartConfig, run_quickstart


@pytest.mark.slow
def test_quickstart_learns_the_three_classes_and_resumes(tmp_path):
    """A reduced quickstart (1,000 images per class, 6 epochs) separates the classes, writes the
    report, and a second call reuses the dataset and the finished run."""
    config = QuickstartConfig(n_per_class=1000, epochs=6, workers=1, device="cpu")
    lines: list[str] = []
    result = run_quickstart(tmp_path, config, say=lines.append)
    assert result.metrics["macro_auc"] > 0.9
    assert result.report.is_file() and result.gallery.is_file()
    again = run_quickstart(tmp_path, config, say=lines.append)
    assert any("reusing" in line for line in lines)
    assert again.metrics["macro_auc"] == pytest.approx(result.metrics["macro_auc"], abs=1e-12)
