"""Lensed-transient classifiers: a coadded image plus its light curves → class logits.

The DeepGraviLens networks of Pinciroli Vago & Fraternali 2023 (Neural Comput. & Appl.; facts in
``REFERENCES.md``, "Lensed transients"), written from their description, and a CNN + LSTM fusion:

* ``cnn_lstm`` — image CNN features and LSTM light-curve features, concatenated → MLP.
* ``lonet`` — CNN and GRU features plus per-band light-curve statistics, fused by a transformer
  encoder (4 layers, 4 heads).
* ``munet`` — image-MLP, CNN and GRU features plus band statistics concatenated → MLP.
* ``glonet`` — one deep MLP on the raw image, the raw light curves and the band statistics.

Every model takes ``forward(images [B, C, H, W], light_curves [B, T, bands])`` and returns
``[B, num_classes]`` logits. Light curves arrive min–max scaled per example and band (the trainer
does it); the models assume nothing more. The shared pieces (:class:`TransientCNN`,
:class:`CurveGRU`, :func:`band_statistics`, :func:`dense_stack`) are reused by all four.

Differences from the authors' release: LoNet and MuNet there load separately pre-trained CNN and
GRU branches; here every model trains end to end. The release's LoNet passes one fused vector per
example to a sequence-first transformer, so attention mixes the examples of a batch; here each
example's three feature vectors (CNN, GRU, statistics) are the tokens attended over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from darklens.models import register_model

__all__ = [
    "GLONET_WIDTHS",
    "INPUTS",
    "LIGHT_CURVES",
    "CnnLstm",
    "CurveGRU",
    "GloNet",
    "LoNet",
    "MuNet",
    "TransientCNN",
    "TransientModel",
    "band_statistics",
    "check_transient_inputs",
    "curve_shape_from",
    "dense_stack",
]

LIGHT_CURVES = "light_curves"
INPUTS = ("images", LIGHT_CURVES)
MIN_IMG_SIZE = 16
CNN_FEATURES = 64  # width of the CNN and GRU feature vectors (DeepGraviLens)


# ---------------------------------------------------------------- checks


def curve_shape_from(model: str, input_shapes: Mapping[str, Sequence[int]]) -> tuple[int, int]:
    """``(T epochs, bands)`` of one example's light curves, validated (T >= 2, bands >= 1)."""
    if LIGHT_CURVES not in input_shapes:
        raise ValueError(
            f"model {model!r} needs input_shapes[{LIGHT_CURVES!r}] = (epochs, bands); "
            f"got keys {sorted(input_shapes)}"
        )
    shape = tuple(int(d) for d in input_shapes[LIGHT_CURVES])
    if len(shape) != 2 or shape[0] < 2 or shape[1] < 1:
        raise ValueError(
            f"model {model!r} needs light curves of shape (epochs >= 2, bands >= 1) per "
            f"example; got input_shapes[{LIGHT_CURVES!r}] = {shape}"
        )
    return shape[0], shape[1]


def check_transient_inputs(
    model: str,
    images: torch.Tensor,
    light_curves: torch.Tensor,
    in_chans: int,
    img_size: int,
    curve_shape: tuple[int, int],
) -> None:
    """Raise ValueError naming the expected shapes unless the batch matches the model."""
    expected_images = (in_chans, img_size, img_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected_images:
        raise ValueError(
            f"model {model!r} expects images of shape [B, {in_chans}, {img_size}, {img_size}]; "
            f"got {list(images.shape)}"
        )
    if light_curves.ndim != 3 or tuple(light_curves.shape[1:]) != curve_shape:
        raise ValueError(
            f"model {model!r} expects light curves of shape [B, {curve_shape[0]} epochs, "
            f"{curve_shape[1]} bands]; got {list(light_curves.shape)}"
        )
    if images.shape[0] != light_curves.shape[0]:
        raise ValueError(
            f"model {model!r} got {images.shape[0]} images but {light_curves.shape[0]} light "
            "curves; give one light curve per image"
        )


# ---------------------------------------------------------------- building blocks


def band_statistics(light_curves: torch.Tensor) -> torch.Tensor:
    """Per-band mean and standard deviation over epochs: ``[B, T, bands]`` → ``[B, 2 * bands]``.

    The "informed" inputs of DeepGraviLens (means first, then unbiased standard deviations).
    """
    std, mean = torch.std_mean(light_curves, dim=1)
    return torch.cat([mean, std], dim=1)


def dense_stack(in_features: int, widths: Sequence[int], dropout: float) -> nn.Sequential:
    """Linear → ReLU → BatchNorm → Dropout for each width, as in the DeepGraviLens heads."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True), nn.BatchNorm1d(width)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = width
    return nn.Sequential(*layers)


class TransientCNN(nn.Module):
    """The DeepGraviLens image CNN: ``[B, C, H, W]`` → ``[B, 64]`` features.

    Convolutions 15×15 stride 3, 5×5 stride 2, 5×5 stride 2 (64/128/256 maps, padding 2, each
    with batch norm and ReLU), spatial dropout, then dense 2304 → 512 → 128 → 64. On 45-px images
    the last map is 3×3×256 = 2304; an adaptive average pool to 3×3 (an identity at 45 px) keeps
    the dense layers the same for any image size >= 16 px.
    """

    def __init__(self, in_chans: int, out_features: int = CNN_FEATURES) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=15, stride=3, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, kernel_size=5, stride=2, padding=2),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 256, kernel_size=5, stride=2, padding=2),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Dropout2d(0.25),
            nn.AdaptiveAvgPool2d(3),
            nn.Flatten(),
        )
        self.dense = nn.Sequential(
            nn.Linear(256 * 9, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(512, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, out_features),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convs(images))


class CurveGRU(nn.Module):
    """The DeepGraviLens light-curve encoder: ``[B, T, bands]`` → ``[B, 64]`` features.

    A 2-layer GRU (dropout 0.4 between layers); its output at the last epoch, batch-normalised,
    goes through a linear layer. Hidden size 16, or 8 for curves of 7 epochs or fewer (the
    authors' DES-wide setting).
    """

    def __init__(
        self, n_bands: int, hidden: int = 16, out_features: int = CNN_FEATURES, layers: int = 2
    ) -> None:
        super().__init__()
        self.rnn = nn.GRU(
            n_bands, hidden, num_layers=layers, batch_first=True, dropout=0.4 if layers > 1 else 0
        )
        self.norm = nn.BatchNorm1d(hidden)
        self.project = nn.Linear(hidden, out_features)

    def forward(self, light_curves: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(light_curves)
        return self.project(self.norm(outputs[:, -1]))


def _gru_hidden(epochs: int, hidden: int | None) -> int:
    return hidden if hidden is not None else (8 if epochs <= 7 else 16)


class TransientModel(nn.Module):
    """Base of the image + light-curve models: holds the expected input shapes and checks them."""

    def __init__(
        self, name: str, in_chans: int, img_size: int, curve_shape: tuple[int, int]
    ) -> None:
        super().__init__()
        self.model_name = name
        self.in_chans = in_chans
        self.img_size = img_size
        self.curve_shape = curve_shape

    def check_inputs(self, images: torch.Tensor, light_curves: torch.Tensor) -> None:
        check_transient_inputs(
            self.model_name, images, light_curves, self.in_chans, self.img_size, self.curve_shape
        )

    def extra_repr(self) -> str:
        epochs, bands = self.curve_shape
        return (
            f"images=[{self.in_chans}, {self.img_size}, {self.img_size}], "
            f"light_curves=[{epochs}, {bands}]"
        )


# ---------------------------------------------------------------- models


class CnnLstm(TransientModel):
    """Image CNN features and LSTM light-curve features, concatenated → MLP → logits."""

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        img_size: int,
        curve_shape: tuple[int, int],
        lstm_hidden: int = 32,
        dropout: float = 0.3,
    ) -> None:
        super().__init__("cnn_lstm", in_chans, img_size, curve_shape)
        self.cnn = TransientCNN(in_chans)
        self.lstm = nn.LSTM(curve_shape[1], lstm_hidden, num_layers=2, batch_first=True)
        self.lstm_project = nn.Linear(lstm_hidden, CNN_FEATURES)
        self.head = nn.Sequential(
            nn.Linear(2 * CNN_FEATURES, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(64, num_classes),
        )

    def forward(self, images: torch.Tensor, light_curves: torch.Tensor) -> torch.Tensor:
        self.check_inputs(images, light_curves)
        outputs, _ = self.lstm(light_curves)
        curve_features = torch.relu(self.lstm_project(outputs[:, -1]))
        return self.head(torch.cat([self.cnn(images), curve_features], dim=1))


class LoNet(TransientModel):
    """CNN, GRU and band-statistics tokens fused by a transformer encoder → MLP → logits.

    The three feature vectors of an example are projected to ``d_model`` and tagged with a learned
    per-token embedding; the encoder (4 layers, 4 heads, as in the paper) attends across them;
    the flattened tokens go through the paper's head (64 → 32 → 8 → classes).
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        img_size: int,
        curve_shape: tuple[int, int],
        gru_hidden: int | None = None,
        d_model: int = 64,
        layers: int = 4,
        heads: int = 4,
        dropout: float = 0.2,
    ) -> None:
        super().__init__("lonet", in_chans, img_size, curve_shape)
        if d_model % heads:
            raise ValueError(f"lonet needs d_model divisible by heads; got {d_model} and {heads}")
        epochs, bands = curve_shape
        self.cnn = TransientCNN(in_chans)
        self.gru = CurveGRU(bands, _gru_hidden(epochs, gru_hidden))
        self.project = nn.ModuleList(  # one projection per token: CNN, GRU, band statistics
            [
                nn.Linear(CNN_FEATURES, d_model),
                nn.Linear(CNN_FEATURES, d_model),
                nn.Linear(2 * bands, d_model),
            ]
        )
        self.token_embedding = nn.Parameter(torch.zeros(len(self.project), d_model))
        nn.init.normal_(self.token_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=0.1, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(
            dense_stack(len(self.project) * d_model, (64,), dropout),
            dense_stack(64, (32,), 0.0),
            dense_stack(32, (8,), dropout),
            nn.Linear(8, num_classes),
        )

    def forward(self, images: torch.Tensor, light_curves: torch.Tensor) -> torch.Tensor:
        self.check_inputs(images, light_curves)
        features = (self.cnn(images), self.gru(light_curves), band_statistics(light_curves))
        tokens = torch.stack([p(f) for p, f in zip(self.project, features, strict=True)], dim=1)
        fused = self.encoder(tokens + self.token_embedding)
        return self.head(fused.flatten(1))


class MuNet(TransientModel):
    """Image-MLP, CNN and GRU features plus band statistics, concatenated → MLP → logits.

    Image MLP: flattened image → 256 → 128 → 64 → 32 (batch norm + ReLU); CNN features reduced
    64 → 32; the concatenation (128 + 2·bands) goes through 64 → 32 → 16 → 8 → classes.
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        img_size: int,
        curve_shape: tuple[int, int],
        gru_hidden: int | None = None,
        dropout: float = 0.2,
    ) -> None:
        super().__init__("munet", in_chans, img_size, curve_shape)
        epochs, bands = curve_shape
        self.image_mlp = nn.Sequential(
            nn.Flatten(), dense_stack(in_chans * img_size * img_size, (256, 128, 64, 32), 0.0)
        )
        self.cnn = TransientCNN(in_chans)
        self.cnn_reduce = nn.Linear(CNN_FEATURES, 32)
        self.gru = CurveGRU(bands, _gru_hidden(epochs, gru_hidden))
        fused = 32 + 32 + CNN_FEATURES + 2 * bands
        self.head = nn.Sequential(
            dense_stack(fused, (64,), dropout),
            dense_stack(64, (32,), 0.0),
            dense_stack(32, (16, 8), dropout),
            nn.Linear(8, num_classes),
        )

    def forward(self, images: torch.Tensor, light_curves: torch.Tensor) -> torch.Tensor:
        self.check_inputs(images, light_curves)
        fused = torch.cat(
            [
                self.image_mlp(images),
                self.cnn_reduce(self.cnn(images)),
                self.gru(light_curves),
                band_statistics(light_curves),
            ],
            dim=1,
        )
        return self.head(fused)


GLONET_WIDTHS = (4096, 2048, 1024, 512, 256, 128, 64, 32)


class GloNet(TransientModel):
    """One deep MLP on the flattened image, flattened light curves and band statistics.

    Paper widths 4096 → … → 32 (batch norm, dropout 0.2), then 8 → classes: ~45M parameters on
    4×45×45 images, most of them in the first layer. ``widths`` makes it smaller.
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        img_size: int,
        curve_shape: tuple[int, int],
        widths: Sequence[int] = GLONET_WIDTHS,
        dropout: float = 0.2,
    ) -> None:
        super().__init__("glonet", in_chans, img_size, curve_shape)
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"glonet needs one or more positive widths; got {widths}")
        epochs, bands = curve_shape
        inputs = in_chans * img_size * img_size + epochs * bands + 2 * bands
        self.mlp = dense_stack(inputs, widths, dropout)
        self.head = nn.Sequential(
            nn.Linear(widths[-1], 8), nn.ReLU(inplace=True), nn.Linear(8, num_classes)
        )

    def forward(self, images: torch.Tensor, light_curves: torch.Tensor) -> torch.Tensor:
        self.check_inputs(images, light_curves)
        flat = torch.cat(
            [images.flatten(1), light_curves.flatten(1), band_statistics(light_curves)], dim=1
        )
        return self.head(self.mlp(flat))


# ---------------------------------------------------------------- registry


def _build(
    cls: type[TransientModel],
    name: str,
    in_chans: int,
    num_classes: int,
    img_size: int,
    input_shapes: Mapping[str, Sequence[int]],
    **kwargs,
) -> TransientModel:
    curve_shape = curve_shape_from(name, input_shapes)
    return cls(in_chans, num_classes, img_size, curve_shape, **kwargs)


def _register(
    name: str,
    cls: type[TransientModel],
    doc: str,
    first_conv: str | None = "cnn.convs.0",
    classifier: str = "head.3",
) -> None:
    def build(
        in_chans: int,
        num_classes: int,
        img_size: int,
        input_shapes: Mapping[str, Sequence[int]],
        **kwargs,
    ) -> nn.Module:
        return _build(cls, name, in_chans, num_classes, img_size, input_shapes, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    register_model(
        name, inputs=INPUTS, min_img_size=MIN_IMG_SIZE, first_conv=first_conv, classifier=classifier
    )(build)


_register(
    "cnn_lstm",
    CnnLstm,
    "CNN + LSTM fusion (~2.4M parameters at 4×45×45); kwargs: lstm_hidden, dropout.",
)
_register(
    "lonet", LoNet, "DeepGraviLens LoNet; kwargs: gru_hidden, d_model, layers, heads, dropout."
)
_register("munet", MuNet, "DeepGraviLens MuNet; kwargs: gru_hidden, dropout.")
_register(
    "glonet",
    GloNet,
    "DeepGraviLens GloNet; kwargs: widths, dropout.",
    first_conv=None,
    classifier="head.2",
)
