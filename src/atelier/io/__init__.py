"""atelier.io."""
