"""Geography: routing a 311 point to its precinct and sector (routing), and the map kept
in the database so every process routes the same way (store).
"""
