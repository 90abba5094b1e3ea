"""Geography kept in the database, so every web process and worker routes the same way."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from board.geo.routing import GeoDataMissing, GeoIndex, load_geo, load_geo_from_features
from board.storage import db
from board.storage.schema import geo_features

_CODE_PROPS = {"precinct": "precinct", "sector": "sector", "house": "PRECINCT"}


def store(engine: sa.Engine, index: GeoIndex) -> int:
    """Replace the stored geography with this index's features; returns how many."""
    precincts, sectors, houses = index.feature_lists()
    rows = [
        {"kind": kind, "code": str(f.get("properties", {}).get(_CODE_PROPS[kind], "")),
         "feature": f}
        for kind, feats in (("precinct", precincts), ("sector", sectors), ("house", houses))
        for f in feats
    ]
    with db.write(engine) as conn:
        if conn.dialect.name == "postgresql":  # web processes starting together take turns
            conn.exec_driver_sql("LOCK TABLE geo_features IN ACCESS EXCLUSIVE MODE")
        conn.execute(geo_features.delete())
        conn.execute(geo_features.insert(), rows)
    return len(rows)


def load_dir(engine: sa.Engine, geo_dir: Path, max_distance_m: float) -> GeoIndex:
    index = load_geo(geo_dir, max_distance_m=max_distance_m)
    store(engine, index)
    return index


def load(engine: sa.Engine, geo_dir: Path | None, max_distance_m: float) -> GeoIndex:
    """The stored geography; on first start, load it from `geo_dir` and store it."""
    with db.read(engine) as conn:
        rows = conn.execute(sa.select(geo_features.c.kind, geo_features.c.feature)).all()
    if rows:
        by_kind: dict[str, list[dict]] = {"precinct": [], "sector": [], "house": []}
        for kind, feature in rows:
            by_kind[kind].append(feature)
        return load_geo_from_features(by_kind["precinct"], by_kind["sector"], by_kind["house"],
                                      max_distance_m=max_distance_m)
    if geo_dir is None:
        raise GeoDataMissing(
            "No precinct boundaries loaded. Download NYC Open Data's \"Police Precincts\" "
            "GeoJSON (and sectors) into a folder as precinct.geojson and sector.geojson, then "
            "set BOARD_GEO_DIR to that folder or run `board geo load FOLDER`."
        )
    return load_dir(engine, geo_dir, max_distance_m)
