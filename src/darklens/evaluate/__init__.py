"""The standard evaluation protocol: metrics, figures and a self-contained HTML report.

The metric functions import with numpy only; ``evaluate_predictions`` and ``write_report`` (which
need matplotlib) load on first use.
"""

from darklens.evaluate.metrics import (
    PrecisionRecallF1,
    accuracy,
    auc_trapezoid,
    challenge_tpr,
    classification_metrics,
    classification_report_dict,
    confusion_matrix,
    macro_auc_ovo,
    macro_auc_ovr,
    micro_auc,
    pr_auc,
    precision_recall_curve_binary,
    precision_recall_f1,
    roc_auc_binary,
    roc_auc_per_class,
    roc_curve_binary,
    tpr_at_fp,
    tpr_at_fpr,
)

__all__ = [
    "PrecisionRecallF1",
    "accuracy",
    "auc_trapezoid",
    "challenge_tpr",
    "classification_metrics",
    "classification_report_dict",
    "confusion_matrix",
    "evaluate_predictions",
    "macro_auc_ovo",
    "macro_auc_ovr",
    "micro_auc",
    "pr_auc",
    "precision_recall_curve_binary",
    "precision_recall_f1",
    "roc_auc_binary",
    "roc_auc_per_class",
    "roc_curve_binary",
    "tpr_at_fp",
    "tpr_at_fpr",
    "write_report",
]


def __getattr__(name: str):
    if name in ("evaluate_predictions", "write_report"):
        from darklens.evaluate import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
