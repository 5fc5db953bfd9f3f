"""Core: image I/O and validation (:mod:`~atelier.core.io`, :mod:`~atelier.core.decode`),
colour (:mod:`~atelier.core.color`: luminance transfer and histogram matching after
Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer"), device and
precision (:mod:`~atelier.core.runtime`), atomic files (:mod:`~atelier.core.files`), optical
flow, warping and occlusion masks for video (:mod:`~atelier.core.flow`),
errors and the small protocols methods meet through (:mod:`~atelier.core.protocols`).
Imports nothing above itself."""
