"""The API's edge: what every request meets before a route handler (docs/api.md).

- `body`: the request body limit (`MAX_BODY_BYTES`), paid only by requests with a body.
- `keys`: API keys on every mutating request under `/api/` and on every job submission.
- `ratelimit`: job submissions per key, counted in memory or in Redis.
- `openapi`: the statuses and the security the edge adds, written into the OpenAPI schema.

CORS, trusted hosts and the docs switch are set in `main.create_app`; database
trouble (503) and validation errors (422 without echoed inputs) are rendered by `errors`.
Authentication ends here: it never reaches services, queries or sessions.
"""
