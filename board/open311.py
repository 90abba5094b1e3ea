"""Open311 GeoReport v2 endpoints (see board.intake)."""

routes: list = []
