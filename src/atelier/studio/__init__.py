"""Atelier Studio: a local web app (FastAPI + a static page) over the library, with a job
queue and the "Explore" preference learner.

This package's ``__init__`` imports nothing heavy: :mod:`atelier.studio.preference` (NumPy
only) and :mod:`atelier.studio.presets` work without the web stack; :mod:`atelier.studio.app`
needs the ``studio`` extra (``pip install 'atelier[studio]'``: fastapi, uvicorn,
python-multipart).
"""
