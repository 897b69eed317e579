"""gankit's data pipeline: built-in datasets and user image folders/zips as in-memory tensors.

Use :func:`load_dataset`; it returns a :class:`Dataset`. The Gaussian-mixture constants
(:func:`mixture_centers`, :data:`MIXTURE_STD`) are exported for the mode-coverage metrics.
"""

from .builtin import BUILTIN_NAMES, MIXTURE_STD, describe_builtins, mixture_centers
from .dataset import Dataset, to_signed
from .images import IMAGE_EXTENSIONS
from .loader import load_dataset

__all__ = [
    "BUILTIN_NAMES",
    "IMAGE_EXTENSIONS",
    "MIXTURE_STD",
    "Dataset",
    "describe_builtins",
    "load_dataset",
    "mixture_centers",
    "to_signed",
]
