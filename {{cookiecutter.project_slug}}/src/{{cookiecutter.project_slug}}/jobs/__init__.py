"""Jobs: background work with a status, progress and a result, whatever runs it."""
