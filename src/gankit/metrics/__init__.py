"""Sample-quality metrics: FID, KID, IS, precision/recall (on learned features) and SWD (on pixels).

``evaluate(run_or_model, data, metrics=..., features="auto" | "inception" | "mnist" | "faces")``
returns a flat dict. Feature extractors live in :mod:`gankit.metrics.features`; the shipped MNIST
digit classifier in :mod:`gankit.metrics.mnist_classifier`, the shipped face classifier (and
``predict_attributes``) in :mod:`gankit.metrics.face_classifier`. Nothing here ever uses the network.
"""

from .evaluate import DEFAULT_METRICS, METRICS, clear_cache, evaluate, parse_metrics
from .features import FaceFeatures, FeatureExtractor, InceptionFeatures, MnistFeatures, resolve_features
from .mnist_classifier import load_mnist_classifier
from .precision_recall import precision_recall
from .scores import fid_from_features, fid_from_stats, inception_score, kid_from_features
from .swd import swd

__all__ = [
    "DEFAULT_METRICS", "METRICS", "FaceFeatures", "FeatureExtractor", "InceptionFeatures", "MnistFeatures", "clear_cache",
    "evaluate", "fid_from_features", "fid_from_stats", "inception_score", "kid_from_features",
    "load_mnist_classifier", "parse_metrics", "precision_recall", "resolve_features", "swd",
]
