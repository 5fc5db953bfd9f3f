"""Core: image I/O and validation (:mod:`~atelier.io.images`, :mod:`~atelier.io.decode`),
colour (:mod:`~atelier.imaging.color`: luminance transfer and histogram matching after
Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer"), device and
precision (:mod:`~atelier.core.runtime`), atomic files (:mod:`~atelier.core.files`), optical
flow, warping and occlusion masks for video (:mod:`~atelier.imaging.flow`),
errors and the small protocols methods meet through (:mod:`~atelier.core.protocols`).
Imports nothing above itself."""
