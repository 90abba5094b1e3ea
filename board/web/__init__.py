"""The web edge: pages, the JSON API and its OpenAPI document, Open311, the WebSocket
routes and wall pages, input and output models, errors, health and the browser policy. The
app factory (app) wires them into one Starlette app through board.bootstrap.
"""
