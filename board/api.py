"""The JSON API."""

routes: list = []
