"""The one outbound HTTP client: SSRF guard, pinned connections, size and redirect limits."""
