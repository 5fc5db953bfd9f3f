"""Core: image I/O and validation (:mod:`~atelier.core.io`, :mod:`~atelier.core.decode`),
colour (:mod:`~atelier.core.color`: luminance transfer and histogram matching after
Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer"), device and
precision (:mod:`~atelier.core.runtime`), atomic files (:mod:`~atelier.core.files`),
errors and the small protocols methods meet through (:mod:`~atelier.core.protocols`).
Imports nothing above itself."""
