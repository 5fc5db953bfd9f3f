"""GAN art generation: a DCGAN (Radford et al. 2016) trained with DiffAugment (Zhao et al.
2020) on a few hundred paintings, with an exponential moving average of the generator
(:mod:`.train`), and sampling, truncation and latent walks from a trained generator
(:mod:`.sample`). Measures of the result (KID on VGG19 features, diversity, nearest
training images) are in :mod:`atelier.analysis.distribution`.
"""

from ...core.lazy import lazy_exports
from .sample import GAN_CARD_FORMAT, generator_path, image_grid, interpolate, latents, load_generator, \
    shipped_generators
from .sample import sample  # noqa: E402  (the function shadows the submodule of the same name)

# sampling never imports the trainer: its names are imported on first use
__getattr__, __dir__ = lazy_exports(__name__, {k: ".train" for k in ("GANTrainConfig", "GANTrainer", "split_files")},
                                    globals())

__all__ = ["GAN_CARD_FORMAT", "GANTrainConfig", "GANTrainer", "generator_path", "image_grid", "interpolate", "latents",
           "load_generator", "sample", "shipped_generators", "split_files"]
