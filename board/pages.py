"""HTML pages."""

routes: list = []
