"""Pages: the batch page scraper (router, job) and metadata extraction from fetched HTML."""
