"""Shared training helpers: seeding, resumable fits with checkpoints and early stopping."""
