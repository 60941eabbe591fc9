"""Keep the fixture trees out of pytest collection."""

collect_ignore_glob = ["fixtures/*"]
