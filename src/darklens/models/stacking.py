"""DeepGraviLens stack: a kernel SVM on the concatenated class probabilities of member networks.

Pinciroli Vago & Fraternali 2023 (``REFERENCES.md``, "Lensed transients") train LoNet, MuNet and
GloNet separately, then fit a support-vector classifier on their concatenated softmax outputs,
choosing C in 1e-4 … 10 and the kernel by validation accuracy. Here:

* :class:`SVMHead` — the decision function of one-vs-rest binary kernel SVMs in torch, its fitted
  arrays held in buffers (so it round-trips through a safetensors ``state_dict``);
* :func:`fit_svm_head` — fits the SVMs with scikit-learn and picks (kernel, C) on validation data;
* ``deepgravilens`` — the registered stack (members + head); :func:`build_stack` assembles one from
  trained members and a fitted head, :func:`stack_kwargs` gives the JSON-able ``create_model``
  keyword arguments that rebuild it before ``load_state_dict``.

The stack is not trained by backpropagation: its parameters have ``requires_grad=False`` and it
stays in eval mode (``train()`` is ignored) so the members' batch-norm statistics never drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from darklens.models import create_model, model_inputs, register_model
from darklens.models.transients import INPUTS, TransientModel, curve_shape_from

__all__ = [
    "DEFAULT_C_GRID",
    "DEFAULT_MEMBERS",
    "KERNELS",
    "DeepGraviLensStack",
    "SVMHead",
    "build_stack",
    "fit_svm_head",
    "resolve_gamma",
    "stack_features",
    "stack_kwargs",
    "svm_decision",
]

KERNELS = ("linear", "rbf")
DEFAULT_C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
DEFAULT_MEMBERS = ("lonet", "munet", "glonet")


# ---------------------------------------------------------------- the SVM decision function


def svm_decision(
    features: torch.Tensor,
    support_vectors: torch.Tensor,
    dual_coef: torch.Tensor,
    intercept: torch.Tensor,
    support_class: torch.Tensor,
    kernel: str,
    gamma: float,
) -> torch.Tensor:
    """One-vs-rest SVM decision values ``[B, K]`` for ``features [B, F]``.

    Class ``k``'s value is ``sum_i dual_coef[i] * kernel(sv_i, x) + intercept[k]`` over the
    support vectors ``i`` with ``support_class[i] == k`` (scikit-learn's binary ``SVC``
    convention: positive means class ``k``). The kernel is ``x·sv`` or ``exp(-gamma |x - sv|²)``.
    Computed in float64 (sums over thousands of support vectors), returned in the input dtype.
    """
    x = features.to(torch.float64)
    vectors = support_vectors.to(torch.float64)
    if kernel == "linear":
        gram = x @ vectors.T
    elif kernel == "rbf":
        # exact differences, not the |x|² + |y|² - 2x·y shortcut, which loses digits
        distances = torch.cdist(x, vectors, compute_mode="donot_use_mm_for_euclid_dist")
        gram = torch.exp(-gamma * distances.square())
    else:
        raise ValueError(f"unknown SVM kernel {kernel!r}; use one of {KERNELS}")
    weighted = gram * dual_coef.to(torch.float64)
    decision = intercept.to(torch.float64).expand(x.shape[0], -1).clone()
    return decision.index_add_(1, support_class, weighted).to(features.dtype)


class SVMHead(nn.Module):
    """One-vs-rest kernel SVMs as a torch module: ``features [B, F]`` → decisions ``[B, K]``.

    Buffers: ``support_vectors [S, F]``, ``dual_coef [S]`` (αᵢyᵢ of each vector in its binary
    problem), ``intercept [K]`` and ``support_class [S]`` (which class's SVM each vector belongs
    to). ``support_per_class`` fixes their sizes (``None``: no support vectors yet, decisions are
    the zero intercepts) so that a fitted head can be rebuilt empty and then loaded.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        support_per_class: Sequence[int] | None = None,
        kernel: str = "rbf",
        gamma: float = 1.0,
    ) -> None:
        super().__init__()
        if num_features < 1 or num_classes < 2:
            raise ValueError(
                f"an SVM head needs num_features >= 1 and num_classes >= 2; got {num_features} "
                f"and {num_classes}"
            )
        if kernel not in KERNELS:
            raise ValueError(f"unknown SVM kernel {kernel!r}; use one of {KERNELS}")
        if not gamma > 0:
            raise ValueError(f"SVM gamma must be positive; got {gamma}")
        counts = [0] * num_classes if support_per_class is None else list(support_per_class)
        if len(counts) != num_classes or any(int(c) != c or c < 0 for c in counts):
            raise ValueError(
                f"support_per_class must give a count >= 0 for each of the {num_classes} "
                f"classes; got {support_per_class}"
            )
        self.num_features = num_features
        self.num_classes = num_classes
        self.kernel = kernel
        self.gamma = float(gamma)
        total = int(sum(counts))
        owner = torch.repeat_interleave(torch.arange(num_classes), torch.tensor(counts))
        self.register_buffer("support_vectors", torch.zeros(total, num_features))
        self.register_buffer("dual_coef", torch.zeros(total))
        self.register_buffer("intercept", torch.zeros(num_classes))
        self.register_buffer("support_class", owner)

    @property
    def fitted(self) -> bool:
        """Whether the head holds support vectors (a fitted SVM always has some per class)."""
        return self.support_vectors.shape[0] > 0

    @property
    def support_per_class(self) -> list[int]:
        """Number of support vectors of each class's binary SVM."""
        return torch.bincount(self.support_class, minlength=self.num_classes).tolist()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(
                f"SVM head expects features of shape [B, {self.num_features}]; "
                f"got {list(features.shape)}"
            )
        return svm_decision(
            features,
            self.support_vectors,
            self.dual_coef,
            self.intercept,
            self.support_class,
            self.kernel,
            self.gamma,
        )

    def extra_repr(self) -> str:
        return (
            f"features={self.num_features}, classes={self.num_classes}, kernel={self.kernel!r}, "
            f"gamma={self.gamma:.6g}, support_per_class={self.support_per_class}"
        )


# ---------------------------------------------------------------- fitting with scikit-learn


def resolve_gamma(features: np.ndarray, gamma: float | str = "scale") -> float:
    """The RBF width as a number: scikit-learn's ``"scale"`` is ``1 / (F · var(features))``.

    A constant feature matrix (variance 0) gives 1.0, as scikit-learn does.
    """
    if gamma == "scale":
        variance = float(np.asarray(features, dtype=np.float64).var())
        return 1.0 / (features.shape[1] * variance) if variance > 0 else 1.0
    if isinstance(gamma, str) or not gamma > 0:
        raise ValueError(f"gamma must be 'scale' or a positive number; got {gamma!r}")
    return float(gamma)


def _as_arrays(
    features: Any, labels: Any, split: str, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features.detach().cpu() if torch.is_tensor(features) else features)
    y = np.asarray(labels.detach().cpu() if torch.is_tensor(labels) else labels)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"{split} features must be [N, F] and labels [N] with N > 0; got "
            f"{list(x.shape)} and {list(y.shape)}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{split} labels must be integer class indices; got dtype {y.dtype}")
    if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
        raise ValueError(
            f"{split} labels must lie in [0, {num_classes}); got {y.min()} … {y.max()}"
        )
    return x.astype(np.float64), y.astype(np.int64)


def _fit_one_vs_rest(
    x: np.ndarray, y: np.ndarray, num_classes: int, kernel: str, c: float, gamma: float, seed: int
) -> list:
    from sklearn.svm import SVC

    return [
        SVC(kernel=kernel, C=c, gamma=gamma, random_state=seed).fit(x, (y == k).astype(int))
        for k in range(num_classes)
    ]


def _head_from_svcs(svcs: list, num_features: int, kernel: str, gamma: float) -> SVMHead:
    head = SVMHead(num_features, len(svcs), [len(s.support_) for s in svcs], kernel, gamma)
    head.support_vectors.copy_(torch.from_numpy(np.concatenate([s.support_vectors_ for s in svcs])))
    head.dual_coef.copy_(torch.from_numpy(np.concatenate([s.dual_coef_[0] for s in svcs])))
    head.intercept.copy_(torch.from_numpy(np.array([s.intercept_[0] for s in svcs])))
    return head


def fit_svm_head(
    train_features: Any,
    train_labels: Any,
    val_features: Any,
    val_labels: Any,
    C_grid: Iterable[float] = DEFAULT_C_GRID,
    kernels: Iterable[str] = KERNELS,
    seed: int = 0,
    *,
    num_classes: int | None = None,
    gamma: float | str = "scale",
) -> tuple[SVMHead, dict[str, Any]]:
    """Fit one-vs-rest SVMs for each (kernel, C), keep the best on validation data.

    One binary ``sklearn.svm.SVC`` per class (class k against the rest); a candidate's
    validation accuracy is that of the argmax of its decision values. Ties go to the earlier
    candidate (``kernels`` order, then ``C_grid`` order). ``gamma="scale"`` is resolved on the
    training features (:func:`resolve_gamma`). Features and labels are arrays or tensors
    (``[N, F]``, ``[N]`` integer classes); every class must occur in the training labels.

    Returns the head built from the chosen SVMs and a JSON-able report: ``kernel``, ``C``,
    ``gamma``, ``val_accuracy`` and ``candidates`` (kernel, C, val accuracy, support vectors).
    """
    try:
        import sklearn  # noqa: F401
    except ImportError as err:  # pragma: no cover - scikit-learn is a darklens dependency
        raise ImportError(
            "fitting the DeepGraviLens SVM needs scikit-learn: pip install scikit-learn"
        ) from err
    x_train, y_train = _as_arrays(train_features, train_labels, "train", num_classes)
    x_val, y_val = _as_arrays(val_features, val_labels, "validation", num_classes)
    classes = num_classes if num_classes is not None else int(y_train.max()) + 1
    missing = sorted(set(range(classes)) - set(y_train.tolist()))
    if classes < 2 or missing:
        raise ValueError(
            f"the training labels must hold every class 0 … {classes - 1} (at least two); "
            f"missing {missing}"
        )
    if x_val.shape[1] != x_train.shape[1]:
        raise ValueError(
            f"validation features have {x_val.shape[1]} columns, training features "
            f"{x_train.shape[1]}"
        )
    if y_val.max() >= classes:
        raise ValueError(
            f"validation labels go up to {y_val.max()} but there are {classes} classes"
        )
    grid = [float(c) for c in C_grid]
    kernels = tuple(kernels)
    if not grid or min(grid) <= 0 or not kernels or set(kernels) - set(KERNELS):
        raise ValueError(
            f"need positive C values and kernels among {KERNELS}; got {grid} and {kernels}"
        )
    width = resolve_gamma(x_train, gamma)

    candidates: list[dict[str, Any]] = []
    chosen: dict[str, Any] = {"val_accuracy": -1.0}
    best_svcs: list = []
    for kernel in kernels:
        for c in grid:
            svcs = _fit_one_vs_rest(x_train, y_train, classes, kernel, c, width, seed)
            decision = np.stack([s.decision_function(x_val) for s in svcs], axis=1)
            accuracy = float(np.mean(decision.argmax(axis=1) == y_val))
            candidates.append(
                {
                    "kernel": kernel,
                    "C": c,
                    "val_accuracy": accuracy,
                    "support_vectors": int(sum(len(s.support_) for s in svcs)),
                }
            )
            if accuracy > chosen["val_accuracy"]:
                best_svcs, chosen = svcs, candidates[-1]
    head = _head_from_svcs(best_svcs, x_train.shape[1], chosen["kernel"], width)
    report = {
        "kernel": chosen["kernel"],
        "C": chosen["C"],
        "gamma": width,
        "val_accuracy": chosen["val_accuracy"],
        "num_train": len(y_train),
        "num_val": len(y_val),
        "candidates": candidates,
    }
    return head, report


# ---------------------------------------------------------------- the stack


def stack_features(
    members: Iterable[nn.Module], images: torch.Tensor, light_curves: torch.Tensor
) -> torch.Tensor:
    """Concatenated softmax probabilities of the members: ``[B, members · K]``, in member order.

    The features the SVM is fitted on; compute them with the members in eval mode.
    """
    return torch.cat([m(images, light_curves).softmax(dim=1) for m in members], dim=1)


class DeepGraviLensStack(TransientModel):
    """Member networks → concatenated probabilities → :class:`SVMHead` decision values.

    ``forward`` returns the SVM decision values as logits (their softmax serves as class scores).
    Until a head is fitted (no support vectors) it returns the log of the members' mean
    probabilities instead, a soft vote, so that an unfitted stack still answers sensibly.
    All parameters are frozen and the module stays in eval mode: the members are trained
    separately and the SVM is fitted by :func:`fit_svm_head`, not by backpropagation.
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        img_size: int,
        curve_shape: tuple[int, int],
        members: Mapping[str, nn.Module],
        head: SVMHead,
        member_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__("deepgravilens", in_chans, img_size, curve_shape)
        _check_head(head, len(members), num_classes)
        self.num_classes = num_classes
        self.members = nn.ModuleDict(members)
        self.head = head
        self.member_kwargs = {k: dict(v) for k, v in (member_kwargs or {}).items()}
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> DeepGraviLensStack:
        """Always eval mode: a fitted stack must not update its members' batch-norm statistics."""
        return super().train(False)

    def member_probabilities(
        self, images: torch.Tensor, light_curves: torch.Tensor
    ) -> torch.Tensor:
        """The SVM's input: members' softmax probabilities, ``[B, members · K]``."""
        self.check_inputs(images, light_curves)
        return stack_features(self.members.values(), images, light_curves)

    def forward(self, images: torch.Tensor, light_curves: torch.Tensor) -> torch.Tensor:
        probabilities = self.member_probabilities(images, light_curves)
        if self.head.fitted:
            return self.head(probabilities)
        mean = probabilities.unflatten(1, (len(self.members), self.num_classes)).mean(dim=1)
        return mean.clamp_min(torch.finfo(mean.dtype).tiny).log()

    def rebuild_kwargs(self) -> dict[str, Any]:
        """See :func:`stack_kwargs`."""
        return {
            "members": list(self.members),
            "member_kwargs": {k: dict(v) for k, v in self.member_kwargs.items()},
            "svm_kernel": self.head.kernel,
            "svm_gamma": self.head.gamma,
            "svm_support": self.head.support_per_class if self.head.fitted else None,
        }


def _check_head(head: SVMHead, n_members: int, num_classes: int) -> None:
    if head.num_features != n_members * num_classes or head.num_classes != num_classes:
        raise ValueError(
            f"the SVM head must map {n_members} members × {num_classes} classes = "
            f"{n_members * num_classes} features to {num_classes} classes; got "
            f"{head.num_features} → {head.num_classes}"
        )


def stack_kwargs(stack: DeepGraviLensStack) -> dict[str, Any]:
    """JSON-able ``create_model("deepgravilens", ...)`` keyword arguments rebuilding ``stack``.

    With the usual ``in_chans``, ``num_classes``, ``img_size`` and ``input_shapes``, they give a
    stack of the same structure, ready for ``load_state_dict`` of the fitted one.
    """
    return stack.rebuild_kwargs()


def _check_members(members: Sequence[str], member_kwargs: Mapping[str, Any]) -> None:
    if not members or len(set(members)) != len(members):
        raise ValueError(f"deepgravilens needs distinct member model names; got {members}")
    for name in members:
        if name == "deepgravilens" or model_inputs(name) != INPUTS:
            raise ValueError(
                f"deepgravilens members must be image + light-curve models such as "
                f"{DEFAULT_MEMBERS}; {name!r} takes {model_inputs(name)}"
            )
    unknown = sorted(set(member_kwargs) - set(members))
    if unknown:
        raise ValueError(f"member_kwargs names models {unknown} that are not members {members}")


@register_model("deepgravilens", inputs=INPUTS, fit="stack")
def deepgravilens(
    in_chans: int,
    num_classes: int,
    img_size: int,
    input_shapes: Mapping[str, Sequence[int]],
    members: Sequence[str] = DEFAULT_MEMBERS,
    svm_kernel: str = "rbf",
    svm_gamma: float = 1.0,
    svm_support: Sequence[int] | None = None,
    member_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> nn.Module:
    """DeepGraviLens: SVM on the probabilities of LoNet, MuNet and GloNet (frozen, not trained).

    ``members`` are registry names built with the same sizes (plus ``member_kwargs[name]``);
    ``svm_support`` gives the number of support vectors per class of a fitted head (``None``:
    unfitted). Assemble a fitted one with :func:`build_stack`.
    """
    members = tuple(members)
    member_kwargs = dict(member_kwargs or {})
    _check_members(members, member_kwargs)
    curve_shape = curve_shape_from("deepgravilens", input_shapes)
    built = {
        name: create_model(
            name,
            in_chans,
            num_classes,
            img_size,
            input_shapes=input_shapes,
            **member_kwargs.get(name, {}),
        )
        for name in members
    }
    head = SVMHead(len(members) * num_classes, num_classes, svm_support, svm_kernel, svm_gamma)
    return DeepGraviLensStack(
        in_chans, num_classes, img_size, curve_shape, built, head, member_kwargs
    )


def build_stack(
    members: Sequence[nn.Module],
    member_names: Sequence[str],
    head: SVMHead,
    *,
    in_chans: int,
    num_classes: int,
    img_size: int,
    input_shapes: Mapping[str, Sequence[int]],
    member_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> DeepGraviLensStack:
    """Assemble a fitted stack from trained members and a fitted head (copies their weights).

    The stack is built through ``create_model`` with :func:`stack_kwargs`-style arguments and the
    weights are then loaded, so a checkpoint saved from it reloads with those same arguments.
    ``member_kwargs`` must be what the members were built with (a mismatch is an error).
    """
    if len(members) != len(member_names):
        raise ValueError(f"got {len(members)} members but {len(member_names)} member names")
    _check_head(head, len(members), num_classes)
    kwargs = {
        "members": list(member_names),
        "member_kwargs": {k: dict(v) for k, v in (member_kwargs or {}).items()},
        "svm_kernel": head.kernel,
        "svm_gamma": head.gamma,
        "svm_support": head.support_per_class if head.fitted else None,
    }
    with torch.random.fork_rng(devices=[]):  # building fresh members must not move the seed
        stack = create_model(
            "deepgravilens", in_chans, num_classes, img_size, input_shapes=input_shapes, **kwargs
        )
    assert isinstance(stack, DeepGraviLensStack)
    for name, member in zip(member_names, members, strict=True):
        try:
            stack.members[name].load_state_dict(member.state_dict())
        except RuntimeError as err:
            raise ValueError(
                f"member {name!r} does not match a {name!r} built with in_chans={in_chans}, "
                f"num_classes={num_classes}, img_size={img_size}, input_shapes={input_shapes} "
                f"and member_kwargs={kwargs['member_kwargs'].get(name, {})}: {err}"
            ) from err
    try:
        stack.head.load_state_dict(head.state_dict())
    except RuntimeError as err:
        raise ValueError(f"the SVM head does not fit this stack: {err}") from err
    return stack
