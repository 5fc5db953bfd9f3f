"""Training of style networks (Johnson et al. 2016; Dumoulin et al. 2017; Huang & Belongie 2017).

* :class:`TrainConfig` and :class:`FeedForwardTrainer`: train a
  :class:`~atelier.networks.TransformerNet` on a folder of photos against one or more
  style images, with checkpoints, resume and a model card.
* :func:`load_trained`: load the result, verified against its model card's sha256.
* :class:`AdaINTrainConfig` and :class:`AdaINTrainer`: train the decoder of an
  :class:`~atelier.networks.AdaINModel` (arbitrary style transfer, Huang & Belongie 2017)
  on folders of photos and style images; :func:`load_adain` loads it, sha256-verified.
* :class:`ImageFolderDataset`: deterministic random crops of a folder of photos.
"""

from .adain import AdaINTrainConfig, AdaINTrainer, load_adain
from .data import IMAGE_EXTENSIONS, ImageFolderDataset, list_images
from .trainer import BaseTrainer, FeedForwardTrainer, TrainConfig, load_trained, output_paths

__all__ = [
    "AdaINTrainConfig",
    "AdaINTrainer",
    "BaseTrainer",
    "IMAGE_EXTENSIONS",
    "FeedForwardTrainer",
    "ImageFolderDataset",
    "TrainConfig",
    "list_images",
    "load_adain",
    "load_trained",
    "output_paths",
]
