"""Painting with brush strokes (issue 27): strokes and renderers (:mod:`.strokes`), the stroke
optimizer and the greedy baseline (:mod:`.optimize`), the Gymnasium environment (:mod:`.env`),
the model-based actor (:mod:`.agent`, :mod:`.train`) and SVG / GIF / JSON output (:mod:`.export`)."""
