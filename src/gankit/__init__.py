"""gankit: train, evaluate and explore the classic GAN families on your own images.

>>> import gankit
>>> result = gankit.train("dcgan", data="mnist", out="runs/digits", preset="small")
>>> model = gankit.load("runs/digits")
>>> images = model.sample(16, seed=0)          # float tensor in [-1, 1], NCHW
>>> gankit.import_model("stylegan2-ffhq.pt", "models/ffhq")   # a pretrained StyleGAN2, safely
>>> gankit.export("runs/faces", "faces.pt", format="rosinality")

The latent tools are pure functions in :mod:`gankit.explore` (project, edits, blend, ...).
"""

from gankit.api import Model, TrainResult, export, families, import_model, info, load, train
from gankit.errors import GankitError

__version__ = "0.1.0"
__all__ = ["GankitError", "Model", "TrainResult", "export", "families", "import_model", "info", "load", "train",
           "__version__"]
