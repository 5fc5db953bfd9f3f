"""atelier.imaging."""
