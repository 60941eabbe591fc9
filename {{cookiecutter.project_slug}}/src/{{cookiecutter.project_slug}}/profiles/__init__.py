"""Profiles: the CRUD reference feature. Copy this folder to start a new feature."""
