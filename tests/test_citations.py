"""Citations: every preset and model names its literature, manifests and reports carry them."""

from __future__ import annotations

import fnmatch

import pytest

import darklens
from darklens.citations import (
    MODEL_SOURCES,
    PRESET_SOURCES,
    REFERENCES,
    SOURCE_CITATIONS,
    dataset_citations,
    model_citations,
    report_citations,
)
from darklens.models import list_models
from darklens.simulate.api import preset_names, simulate


def test_every_preset_and_model_cites_its_sources_and_no_entry_is_dead():
    presets, models = preset_names(), list_models()
    for name in presets:
        keys = [c["key"] for c in dataset_citations(name)]
        assert keys[0] == "darklens" and {"lenstronomy", "caustics"} <= set(keys)
        assert len(keys) > 3, f"{name} names no literature source"
    for name in models:
        assert model_citations(name), f"model {name} cites no paper"
    for keys in SOURCE_CITATIONS.values():
        assert all(key in REFERENCES for key in keys)
    for table, names in ((PRESET_SOURCES, presets), (MODEL_SOURCES, models)):
        for pattern, keys in table.items():
            assert any(fnmatch.fnmatchcase(n, pattern) for n in names), f"{pattern} matches none"
            assert all(key in REFERENCES for key in keys)
    for ref in REFERENCES.values():
        assert ref.doi or ref.arxiv or ref.url or "A&A" in ref.reference or "PASJ" in ref.reference


def test_simulated_manifests_carry_version_and_citations():
    data = simulate("lensfind_ground", n=4, lens_fraction=(0.5, 0.5, 0.5),
                    overrides={"instrument.num_pix": 16})  # fmt: skip
    manifest = data.manifest
    assert manifest["darklens_version"] == darklens.__version__
    keys = [c["key"] for c in manifest["citations"]]
    population = ["collett2015", "choi2007", "hyde2009", "lsst2009"]
    assert keys == ["darklens", *population, "metcalf2019", "kids", "lenstronomy", "caustics"]
    assert darklens.__version__ in manifest["citations"][0]["reference"]


@pytest.mark.parametrize(
    ("manifest", "models", "expected"),
    [
        ({"preset": "transients_lsst_wide"}, ["lonet", "munet"],
         ["darklens", "deepgravilens", "deepzipper", "bazin2009", "lenstronomy", "caustics"]),
        ({"citations": [{"key": "mine", "reference": "Me 2026"}]}, ["cmu_deeplens"],
         ["darklens", "mine", "lanusse2018"]),
        ({"source": "deeplense-import"}, ["resnet18_cbam"],
         ["darklens", "alexander2020", "deeplensesim", "woo2018_cbam", "he2016_resnet"]),
        ({"source": "my-own-files"}, ["lastro_cnn"], ["darklens", "schaefer2018"]),
    ],
)  # fmt: skip
def test_report_citations_merge_dataset_and_models_without_repeats(manifest, models, expected):
    assert [c["key"] for c in report_citations(manifest, models)] == expected


def test_citation_file_names_this_version():
    import tomllib
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert cff["cff-version"] == "1.2.0" and cff["title"].startswith("darklens")
    assert str(cff["version"]) == project["version"] and cff["license"] == "MIT"
    assert cff["authors"] and all("title" in ref for ref in cff["references"])
