"""Places: Google Maps text searches (router, job) and the Places API (New) client."""
