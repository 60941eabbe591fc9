"""Sitemaps: the sitemap job (router, tasks), safe streaming parsing and the index walk."""
