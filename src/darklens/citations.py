"""What to cite: darklens itself, the literature behind each preset, and the papers of the models.

Dataset manifests carry :func:`dataset_citations` (written by every simulator kind) and reports
:func:`report_citations` (the dataset's entries, the model's papers and darklens), so that a user
can cite exactly what they used. Each entry is a plain dict: ``key``, ``reference`` (authors,
year, journal), ``why`` (what darklens took from it) and, where known, ``doi``, ``arxiv`` or
``url``. The repository's ``CITATION.cff`` describes darklens for citation tools.

Examples:
    >>> [c["key"] for c in dataset_citations("model_ii")]
    ['darklens', 'alexander2020', 'deeplensesim', 'lenstronomy', 'caustics']
    >>> [c["key"] for c in model_citations("resnet18_cbam")]
    ['woo2018_cbam', 'he2016_resnet']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from darklens import __version__


@dataclass(frozen=True)
class Reference:
    """One work to cite; ``why`` says what darklens took from it."""

    key: str
    reference: str
    why: str
    doi: str | None = None
    arxiv: str | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, str]:
        fields = {"doi": self.doi, "arxiv": self.arxiv, "url": self.url}
        return {
            "key": self.key,
            "reference": self.reference,
            "why": self.why,
            **{name: value for name, value in fields.items() if value},
        }


def _darklens() -> Reference:
    return Reference(
        "darklens",
        f"darklens developers, darklens {__version__}: deep learning on strong gravitational "
        "lensing data (software; see CITATION.cff)",
        "the software that made this",
    )


_REFERENCES = (
    Reference(
        "alexander2020",
        "Alexander, Gleyzer, McDonough, Toomey & Usai 2020, ApJ 893, 15: Deep Learning the "
        "Morphology of Dark Matter Substructure",
        "DeepLense substructure classes and simulation recipe (Models I-III)",
        doi="10.3847/1538-4357/ab7925",
        arxiv="1909.07346",
    ),
    Reference(
        "deeplensesim",
        "M. W. Toomey, DeepLenseSim (software)",
        "the DeepLense Model I-III simulation scripts that the substructure presets reproduce",
        url="https://github.com/mwt5345/DeepLenseSim",
    ),
    Reference(
        "lenstronomy",
        "Birrer & Amara 2018, Physics of the Dark Universe 22, 189: lenstronomy",
        "instrument configurations, noise model, profiles and lens-equation solving",
        arxiv="1803.09746",
    ),
    Reference(
        "caustics",
        "Stone et al. 2024: Caustics, a Python package for accelerated strong gravitational "
        "lensing simulations",
        "batched ray shooting and light profiles",
        arxiv="2406.15542",
    ),
    Reference(
        "metcalf2019",
        "Metcalf et al. 2019, A&A 625, A119: The strong gravitational lens finding challenge",
        "lens-finding task, cutout sizes, space and ground (KiDS-like) sets, TPR0/TPR10",
        arxiv="1802.03609",
    ),
    Reference(
        "kids",
        "de Jong et al. 2013, Exp. Astron. 35, 25; Kuijken et al. 2019, A&A 625, A2 (KiDS)",
        "ground-based exposure times, seeing and depths",
    ),
    Reference(
        "hsc",
        "Aihara et al. 2018, PASJ 70, S4 (Hyper Suprime-Cam Subaru Strategic Program)",
        "HSC-Wide-like bands, exposures, seeing and depths of the DeepLense lens-finding shape",
    ),
    Reference(
        "deepgravilens",
        "Pinciroli Vago & Fraternali 2023, Neural Computing and Applications: DeepGraviLens, a "
        "multi-modal architecture for classifying gravitational lensing data",
        "lensed-transient classes, cutouts and light curves; LoNet, MuNet, GloNet, the SVM stack",
        doi="10.1007/s00521-023-08766-9",
        arxiv="2205.00701",
    ),
    Reference(
        "deepgravilens_data",
        "Pinciroli Vago & Fraternali 2023, DeepGraviLens data release (Zenodo 7860294)",
        "the released lensed-transient images, light curves and metadata",
        doi="10.5281/zenodo.7860294",
    ),
    Reference(
        "deepzipper",
        "Morgan et al. 2022, ApJ 927: DeepZipper, a novel deep-learning architecture for lensed "
        "supernovae identification",
        "survey settings of the lensed-transient data (DES-deep, DESI-DOT, LSST-wide); CNN+LSTM",
        doi="10.3847/1538-4357/ac5178",
        arxiv="2112.01541",
    ),
    Reference(
        "bazin2009",
        "Bazin et al. 2009, A&A 499, 653",
        "the parametric supernova light-curve shape",
    ),
    Reference(
        "lanusse2018",
        "Lanusse et al. 2018, MNRAS 473, 3895: CMU DeepLens",
        "the cmu_deeplens architecture",
        arxiv="1703.02642",
    ),
    Reference(
        "schaefer2018",
        "Schaefer et al. 2018, A&A 611, A2: Deep convolutional neural networks as strong "
        "gravitational lens detectors",
        "the lastro_cnn architecture",
        arxiv="1705.07132",
    ),
    Reference(
        "collett2015",
        "Collett 2015, ApJ 811, 20: The population of galaxy-galaxy strong lenses in forthcoming "
        "optical imaging surveys",
        "the lens-finding deflector and source populations and the 'lenspop' lens definition",
        doi="10.1088/0004-637X/811/1/20",
        arxiv="1507.02657",
    ),
    Reference(
        "choi2007",
        "Choi, Park & Vogeley 2007, ApJ 658, 884: Internal and collective properties of galaxies "
        "in the SDSS",
        "the velocity-dispersion function of the deflectors",
        arxiv="astro-ph/0611607",
    ),
    Reference(
        "hyde2009",
        "Hyde & Bernardi 2009, MNRAS 394, 1978: Curvature in the scaling relations of early-type "
        "galaxies",
        "deflector luminosity and size from the velocity dispersion",
        arxiv="0810.4922",
    ),
    Reference(
        "lsst2009",
        "LSST Science Collaboration 2009, LSST Science Book, version 2.0",
        "source number counts and redshift distribution per magnitude",
        arxiv="0912.0201",
    ),
    Reference(
        "tobin2017",
        "Tobin et al. 2017, IROS: Domain randomization for transferring deep neural networks "
        "from simulation to the real world",
        "the domain-randomised 'robust' preset",
        arxiv="1703.06907",
    ),
    Reference(
        "williams1996_hdf",
        "Williams et al. 1996, AJ 112, 1335: The Hubble Deep Field",
        "the galaxies of the built-in real-galaxy source bank (scikit-image's copy of the HDF)",
        doi="10.1086/118105",
    ),
    Reference(
        "he2016_resnet",
        "He, Zhang, Ren & Sun 2016, CVPR: Deep residual learning for image recognition",
        "ResNet architectures",
        arxiv="1512.03385",
    ),
    Reference(
        "woo2018_cbam",
        "Woo, Park, Lee & Kweon 2018, ECCV: CBAM, convolutional block attention module",
        "the attention blocks of resnet18_cbam",
        arxiv="1807.06521",
    ),
    Reference(
        "woo2023_convnextv2",
        "Woo et al. 2023, CVPR: ConvNeXt V2",
        "the convnextv2 architectures",
        arxiv="2301.00808",
    ),
    Reference(
        "tan2019_efficientnet",
        "Tan & Le 2019, ICML: EfficientNet",
        "the efficientnet_b0 architecture",
        arxiv="1905.11946",
    ),
    Reference(
        "dosovitskiy2021_vit",
        "Dosovitskiy et al. 2021, ICLR: An image is worth 16x16 words (ViT)",
        "the vit_tiny architecture",
        arxiv="2010.11929",
    ),
    Reference(
        "ronneberger2015_unet",
        "Ronneberger, Fischer & Brox 2015, MICCAI: U-Net",
        "the unet architecture",
        arxiv="1505.04597",
    ),
    Reference(
        "liu2021_swin",
        "Liu et al. 2021, ICCV: Swin Transformer",
        "the swin_tiny architecture",
        arxiv="2103.14030",
    ),
)
REFERENCES: dict[str, Reference] = {ref.key: ref for ref in _REFERENCES}

_LIBRARIES = ("lenstronomy", "caustics")
# the lens-finding population (deflectors, sources, lens definition)
_POPULATION = ("collett2015", "choi2007", "hyde2009", "lsst2009")
# preset name pattern -> literature its settings come from (before the simulation libraries)
PRESET_SOURCES: dict[str, tuple[str, ...]] = {
    "model_iv": ("alexander2020", "deeplensesim", "williams1996_hdf"),
    "model_*": ("alexander2020", "deeplensesim"),
    "robust": ("tobin2017", "alexander2020", "deeplensesim", "williams1996_hdf"),
    "lensfind_space": (*_POPULATION, "metcalf2019"),
    "lensfind_ground": (*_POPULATION, "metcalf2019", "kids"),
    "lensfind_deeplense": (*_POPULATION, "hsc"),
    "lensfind_*": _POPULATION,
    "transients_*": ("deepgravilens", "deepzipper", "bazin2009"),
}
# an imported dataset's manifest "source" -> the works behind the data
SOURCE_CITATIONS: dict[str, tuple[str, ...]] = {
    "deeplense-import": ("alexander2020", "deeplensesim"),
    "bologna-import": ("metcalf2019",),
    "DeepGraviLens (Zenodo 7860294)": ("deepgravilens", "deepgravilens_data"),
}
# model name pattern -> the papers of its architecture
MODEL_SOURCES: dict[str, tuple[str, ...]] = {
    "deeplense_cnn": ("alexander2020",),
    "resnet18_cbam": ("woo2018_cbam", "he2016_resnet"),
    "resnet*": ("he2016_resnet",),
    "default": ("he2016_resnet",),
    "convnextv2_*": ("woo2023_convnextv2",),
    "efficientnet_*": ("tan2019_efficientnet",),
    "vit_*": ("dosovitskiy2021_vit",),
    "swin_*": ("liu2021_swin",),
    "cmu_deeplens": ("lanusse2018",),
    "lastro_cnn": ("schaefer2018",),
    "cnn_lstm": ("deepzipper",),
    "lonet": ("deepgravilens",),
    "munet": ("deepgravilens",),
    "glonet": ("deepgravilens",),
    "deepgravilens": ("deepgravilens",),
    "unet": ("ronneberger2015_unet",),
}


def _keys_for(name: str, table: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The keys of the first pattern in ``table`` that matches ``name`` (none: empty)."""
    for pattern, keys in table.items():
        if fnmatch.fnmatchcase(name, pattern):
            return keys
    return ()


def _entries(keys: Iterable[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for key in keys:
        ref = _darklens() if key == "darklens" else REFERENCES[key]
        if all(entry["key"] != key for entry in out):
            out.append(ref.to_dict())
    return out


def dataset_citations(preset: str) -> list[dict[str, str]]:
    """darklens, the preset's literature sources and the simulation libraries."""
    return _entries(("darklens", *_keys_for(preset, PRESET_SOURCES), *_LIBRARIES))


def source_citations(source: str) -> list[dict[str, str]]:
    """darklens and the works behind an imported dataset (by its manifest's ``source``)."""
    return _entries(("darklens", *SOURCE_CITATIONS.get(source, ())))


def model_citations(model: str | None) -> list[dict[str, str]]:
    """The papers of a registered model's architecture (empty for unknown names)."""
    return _entries(_keys_for(model, MODEL_SOURCES) if model else ())


def report_citations(manifest: Mapping[str, Any], models: Iterable[str]) -> list[dict[str, str]]:
    """What a report on ``models`` over a dataset with ``manifest`` should cite: darklens, the
    dataset's own citations (its manifest's, else its preset's or its import source's), then
    the models' papers."""
    recorded, preset = manifest.get("citations"), manifest.get("preset")
    source = manifest.get("source")
    dataset: list = []
    if isinstance(recorded, list):
        dataset = recorded
    elif isinstance(preset, str):
        dataset = dataset_citations(preset)
    elif isinstance(source, str):
        dataset = source_citations(source)
    entries = [_darklens().to_dict()]
    for entry in [*dataset, *(e for m in models for e in model_citations(m))]:
        if isinstance(entry, Mapping) and all(e["key"] != entry.get("key") for e in entries):
            entries.append(dict(entry))
    return entries
