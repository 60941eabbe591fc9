"""Application package: settings, the db package, and one folder per feature."""
