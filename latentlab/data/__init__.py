"""Data sources, image preparation and splits."""
