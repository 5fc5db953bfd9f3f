"""The studio's API routes, one router per area: images, jobs (with methods and history) and
explore (rounds, picks, presets: :mod:`atelier.studio.routes.explore`)."""
