"""Precinct and sector geography: routes a 311 point to the precinct and sector that own it.

Pure geography: no database, no web. The app stores the raw GeoJSON features (see
``GeoIndex.feature_lists``) and rebuilds the index with ``load_geo_from_features``; tests and the
development demo read the files with ``load_geo``.

Routing is exact point-in-polygon on shapely STRtree indexes. Geometries are projected with a
local equirectangular projection around New York City so that every distance is in metres;
over the city's extent the error is well under 1%, which is plenty for "within 300 m".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

__all__ = [
    "DEFAULT_MAX_DISTANCE_M",
    "GeoDataMissing",
    "GeoIndex",
    "Route",
    "load_geo",
    "load_geo_from_features",
]

DEFAULT_MAX_DISTANCE_M = 300.0

PRECINCT_FILE = "precinct.geojson"
SECTOR_FILE = "sector.geojson"
HOUSE_FILE = "precinct_house.geojson"

# Local equirectangular projection around NYC (latitude 40.7°): metres per degree.
_M_PER_DEG_LON = math.cos(math.radians(40.7)) * 111_320.0
_M_PER_DEG_LAT = 110_540.0

_HELP = (
    "The city's boundaries are NYC Open Data's \"Police Precincts\" GeoJSON (sectors where the "
    "department provides them). Set BOARD_GEO_DIR to a folder holding precinct.geojson and "
    "sector.geojson (precinct_house.geojson with station houses is optional)."
)


class GeoDataMissing(RuntimeError):
    """The geography is missing or unusable; the board cannot route jobs without it.

    ``source`` is "precinct" or "sector" when the fault is in that data, so a loader can name
    the file it came from.
    """

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


@dataclass(frozen=True, slots=True)
class Route:
    """Where a point goes.

    ``method`` is "inside" (in a precinct polygon, distance 0), "nearest" (outside every polygon
    but within the configured distance of ``precinct``) or "unrouted" (no usable coordinates, or
    too far: the job goes to the citywide unrouted queue; ``distance_m`` is then the distance to
    the nearest precinct, or ``math.inf`` when there is no usable position).
    """

    precinct: str | None
    sector: str | None
    method: str
    distance_m: float


# Where a job with no usable position goes: the unrouted queue (also with no map loaded).
NO_POSITION = Route(None, None, "unrouted", math.inf)


def _projected(lat: Any, lon: Any) -> tuple[float, float] | None:
    """A usable (lat, lon) in local metres (x, y); None for no, non-numeric, out-of-range or
    null-island coordinates (the classic "geocoder failed" 0, 0)."""
    if lat is None or lon is None:
        return None
    try:
        flat, flon = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if (
        not (math.isfinite(flat) and math.isfinite(flon))
        or not (-90.0 <= flat <= 90.0 and -180.0 <= flon <= 180.0)
        or (flat == 0.0 and flon == 0.0)
    ):
        return None
    return flon * _M_PER_DEG_LON, flat * _M_PER_DEG_LAT


def _project_coords(coords: np.ndarray) -> np.ndarray:
    """lon/lat array (N, 2) to local metres, so shapely distances are metric."""
    return coords * np.array([_M_PER_DEG_LON, _M_PER_DEG_LAT])


def _project(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, _project_coords)


def _make_valid(geom: BaseGeometry) -> BaseGeometry:
    """Repair self-intersections (the city's simplified files have a few) keeping polygons only."""
    if geom.is_valid:
        return geom
    try:
        return shapely.make_valid(geom, method="structure")
    except TypeError:  # shapely < 2.1 has no method=; buffer(0) fixes these bow-ties as well
        return geom.buffer(0)


def _precinct_key(value: Any) -> str | None:
    """Normalise a precinct id ("075", 75, 75.0, "75") to "75"; None if it is not a number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    text = str(value).strip()
    if text.isdigit():
        return str(int(text))
    try:
        number = float(text)
    except ValueError:
        return None
    return str(int(number)) if number.is_integer() else None


def _sector_precinct(sector: str) -> str | None:
    """A sector id's precinct is its leading digits ("75A" -> "75")."""
    match = re.match(r"\s*(\d+)", sector)
    return str(int(match.group(1))) if match else None


def _num_key(precinct: str) -> tuple[int, str]:
    return (int(precinct), precinct) if precinct.isdigit() else (10**9, precinct)


def _feature_geometry(feature: Mapping[str, Any], what: str, source: str) -> BaseGeometry:
    """Parse a polygon feature's geometry, refusing anything that cannot be routed against."""
    raw = feature.get("geometry") if isinstance(feature, Mapping) else None
    if not raw:
        raise GeoDataMissing(f"{what} has no geometry. {_HELP}", source)
    try:
        geom = shape(raw)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise GeoDataMissing(f"{what} has an unreadable geometry ({exc}). {_HELP}", source) from exc
    if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise GeoDataMissing(f"{what} is not a polygon ({geom.geom_type}). {_HELP}", source)
    west, south, east, north = geom.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise GeoDataMissing(
            f"{what} has coordinates outside longitude/latitude ranges (bounds {geom.bounds}); "
            f"the files must be WGS84 GeoJSON, not a projected CRS such as State Plane. {_HELP}",
            source,
        )
    return geom


def _props(feature: Mapping[str, Any]) -> Mapping[str, Any]:
    props = feature.get("properties") if isinstance(feature, Mapping) else None
    return props if isinstance(props, Mapping) else {}


class GeoIndex:
    """Spatial index over precinct and sector polygons, plus station houses for the map."""

    def __init__(
        self,
        precincts: list[dict],
        sectors: list[dict],
        houses: list[dict] | None = None,
        *,
        max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
    ) -> None:
        if not math.isfinite(max_distance_m) or max_distance_m < 0:
            raise ValueError(f"max_distance_m must be a finite number >= 0, got {max_distance_m}")
        self.max_distance_m = float(max_distance_m)
        self._raw = (list(precincts), list(sectors), list(houses or []))

        # Precincts: one feature each.
        self._precinct_ids: list[str] = []
        self._precinct_features: dict[str, dict] = {}
        self._precinct_bounds: dict[str, tuple[float, float, float, float]] = {}
        projected: list[BaseGeometry] = []
        for i, feature in enumerate(precincts):
            what = f"precinct feature #{i}"
            key = _precinct_key(_props(feature).get("precinct"))
            if key is None:
                raise GeoDataMissing(
                    f"{what} has no numeric 'precinct' property. {_HELP}", "precinct"
                )
            if key in self._precinct_features:
                raise GeoDataMissing(
                    f"precinct {key} appears twice in the precinct data. {_HELP}", "precinct"
                )
            geom = _feature_geometry(feature, f"{what} (precinct {key})", "precinct")
            west, south, east, north = geom.bounds
            self._precinct_ids.append(key)
            self._precinct_features[key] = feature
            self._precinct_bounds[key] = (south, west, north, east)
            projected.append(_make_valid(_project(geom)))
        if not self._precinct_ids:
            raise GeoDataMissing(f"The precinct data holds no features. {_HELP}", "precinct")
        self._precinct_geoms = np.array(projected, dtype=object)
        shapely.prepare(self._precinct_geoms)
        self._precinct_tree = STRtree(self._precinct_geoms)

        # Sectors: grouped by the precinct named by their leading digits.
        self._sector_ids: list[str] = []
        self._sector_precinct: list[str] = []
        self._sectors_by_precinct: dict[str, list[int]] = {}
        sector_geoms: list[BaseGeometry] = []
        seen: set[str] = set()
        for i, feature in enumerate(sectors):
            what = f"sector feature #{i}"
            raw_id = _props(feature).get("sector")
            sector = str(raw_id).strip() if raw_id is not None else ""
            precinct = _sector_precinct(sector)
            if not sector or precinct is None:
                raise GeoDataMissing(
                    f"{what} has no 'sector' property starting with its precinct number "
                    f'(like "75A"), got {raw_id!r}. {_HELP}',
                    "sector",
                )
            if sector in seen:
                raise GeoDataMissing(
                    f"sector {sector} appears twice in the sector data. {_HELP}", "sector"
                )
            seen.add(sector)
            geom = _feature_geometry(feature, f"{what} (sector {sector})", "sector")
            self._sectors_by_precinct.setdefault(precinct, []).append(len(self._sector_ids))
            self._sector_ids.append(sector)
            self._sector_precinct.append(precinct)
            sector_geoms.append(_make_valid(_project(geom)))
        self._sector_features = list(sectors)
        self._sector_geoms = np.array(sector_geoms, dtype=object)
        shapely.prepare(self._sector_geoms)
        self._sector_tree = STRtree(self._sector_geoms)
        for indexes in self._sectors_by_precinct.values():
            indexes.sort(key=lambda j: self._sector_ids[j])

        # Station houses: optional decoration for the map; bad entries are skipped, not fatal.
        self._houses: dict[str, dict] = {}
        for feature in houses or []:
            props = _props(feature)
            key = _precinct_key(props.get("PRECINCT", props.get("precinct")))
            geometry = feature.get("geometry") if isinstance(feature, Mapping) else None
            if key is None or not isinstance(geometry, Mapping):
                continue
            coords = geometry.get("coordinates")
            if geometry.get("type") != "Point" or not isinstance(coords, list | tuple):
                continue
            try:
                lon, lat = float(coords[0]), float(coords[1])
            except (IndexError, TypeError, ValueError):
                continue
            if key not in self._houses:
                self._houses[key] = {"lat": lat, "lon": lon, "address": _address(props)}

    # -- routing -------------------------------------------------------------------------------

    def route(self, lat: float | None, lon: float | None) -> Route:
        """Route one point: inside a precinct, else nearest within max_distance_m, else unrouted.

        Never raises for bad input: unusable coordinates are a routing outcome ("unrouted"),
        because nothing may be dropped.
        """
        return self.route_many([(lat, lon)])[0]

    def route_many(self, points: Sequence[tuple[float | None, float | None]]) -> list[Route]:
        """`route` for each (lat, lon), the same Routes, with the polygon tests of all the
        points done in one STRtree query per layer (intake routes thousands a second)."""
        routes: list[Route] = [NO_POSITION] * len(points)
        usable: list[int] = []
        xs: list[float] = []
        ys: list[float] = []
        for i, (lat, lon) in enumerate(points):
            xy = _projected(lat, lon)
            if xy is not None:
                usable.append(i)
                xs.append(xy[0])
                ys.append(xy[1])
        if not usable:
            return routes
        geoms = shapely.points(xs, ys)
        # On a shared edge (or a sliver where simplified polygons overlap) the lowest precinct
        # number, and within it the lowest sector, so the same point always routes the same way.
        inside: dict[int, str] = {}  # position in `usable` -> its precinct
        for j, t in zip(*self._precinct_tree.query(geoms, predicate="intersects").tolist(),
                        strict=True):
            found, current = self._precinct_ids[t], inside.get(j)
            if current is None or _num_key(found) < _num_key(current):
                inside[j] = found
        sectors: dict[int, str] = {}
        there = sorted(inside)
        for k, t in zip(*self._sector_tree.query(geoms[there], predicate="intersects").tolist(),
                        strict=True):
            j = there[k]
            sector = self._sector_ids[t]
            if self._sector_precinct[t] == inside[j] and (j not in sectors or sector < sectors[j]):
                sectors[j] = sector
        for j, i in enumerate(usable):
            precinct = inside.get(j)
            routes[i] = (Route(precinct, sectors.get(j), "inside", 0.0) if precinct is not None
                         else self._outside(geoms[j]))
        return routes

    def _outside(self, point: shapely.Point) -> Route:
        """A point in no precinct: the nearest within max_distance_m, else unrouted."""
        nearest, distances = self._precinct_tree.query_nearest(
            point, return_distance=True, all_matches=True
        )
        if not len(nearest):  # cannot happen with at least one precinct, but stay total
            return NO_POSITION
        distance = float(distances[0])
        if distance > self.max_distance_m:
            return Route(None, None, "unrouted", distance)
        precinct = min((self._precinct_ids[i] for i in nearest), key=_num_key)
        return Route(precinct, self._nearest_sector(point, precinct), "nearest", distance)

    def _nearest_sector(self, point: shapely.Point, precinct: str) -> str | None:
        indexes = self._sectors_by_precinct.get(precinct)
        if not indexes:
            return None
        distances = shapely.distance(self._sector_geoms[indexes], point)
        return self._sector_ids[indexes[int(np.argmin(distances))]]

    # -- lookups for the map and the admin -----------------------------------------------------

    def precincts(self) -> list[str]:
        """Precinct ids sorted numerically ("1", "5", … "123"), for menus and scoping."""
        return sorted(self._precinct_ids, key=_num_key)

    def sectors_of(self, precinct: str) -> list[str]:
        """Sector ids of one precinct, sorted; empty for an unknown precinct."""
        key = _precinct_key(precinct)
        return [self._sector_ids[i] for i in self._sectors_by_precinct.get(key or "", [])]

    def precinct_feature(self, precinct: str) -> dict | None:
        """The original WGS84 GeoJSON Feature, for drawing the boundary on a Leaflet map."""
        return self._precinct_features.get(_precinct_key(precinct) or "")

    def sector_features(self, precinct: str) -> list[dict]:
        """The original WGS84 sector Features of one precinct, for the map."""
        key = _precinct_key(precinct)
        return [self._sector_features[i] for i in self._sectors_by_precinct.get(key or "", [])]

    def precinct_bounds(self, precinct: str) -> tuple[float, float, float, float]:
        """(south, west, north, east) in degrees, for Leaflet fitBounds. KeyError if unknown."""
        key = _precinct_key(precinct)
        if key is None or key not in self._precinct_bounds:
            raise KeyError(f"unknown precinct {precinct!r}")
        return self._precinct_bounds[key]

    def station_house(self, precinct: str) -> dict | None:
        """{"lat", "lon", "address"} of the precinct's station house, or None if not known."""
        house = self._houses.get(_precinct_key(precinct) or "")
        return dict(house) if house else None

    def feature_lists(self) -> tuple[list[dict], list[dict], list[dict]]:
        """The raw (precincts, sectors, houses) Feature lists, so the app can store them."""
        precincts, sectors, houses = self._raw
        return list(precincts), list(sectors), list(houses)


def _address(props: Mapping[str, Any]) -> str:
    """Display address, like "2320 Hylan Boulevard, Staten Island, NY 10306"."""

    def text(name: str) -> str:
        value = props.get(name)
        return str(value).strip() if value is not None else ""

    # One house in the city's file has STREET null and the street in STREET0.
    street = " ".join(p for p in (text("NUM"), text("SUF"), text("STREET") or text("STREET0")) if p)
    tail = " ".join(p for p in ("NY" if text("BORO") else "", text("ZIP")) if p)
    return ", ".join(p for p in (street, text("BORO"), tail) if p)


def load_geo_from_features(
    precincts: list[dict],
    sectors: list[dict],
    houses: list[dict],
    *,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
) -> GeoIndex:
    """Build the index from GeoJSON Feature dicts, e.g. as stored in the app's database."""
    return GeoIndex(precincts, sectors, houses, max_distance_m=max_distance_m)


def _read_features(path: Path, *, required: bool) -> list[dict] | None:
    """Read a FeatureCollection's features; GeoDataMissing (or None if optional) when unusable."""
    if not path.is_file():
        if not required:
            return None
        raise GeoDataMissing(f"Geography file {path.name} is missing (looked for {path}). {_HELP}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        if not required:
            return None
        raise GeoDataMissing(
            f"Geography file {path.name} cannot be read as GeoJSON ({path}: {exc}). {_HELP}"
        ) from exc
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        if not required:
            return None
        raise GeoDataMissing(
            f"Geography file {path.name} is not a GeoJSON FeatureCollection ({path}). {_HELP}"
        )
    return features


def load_geo(geo_dir: Path, *, max_distance_m: float = DEFAULT_MAX_DISTANCE_M) -> GeoIndex:
    """Load precinct.geojson, sector.geojson and (optional) precinct_house.geojson from geo_dir."""
    geo_dir = Path(geo_dir)
    if not geo_dir.is_dir():
        raise GeoDataMissing(
            f"Geography folder {geo_dir} does not exist, so {PRECINCT_FILE} and {SECTOR_FILE} "
            f"cannot be read. {_HELP}"
        )
    precincts = _read_features(geo_dir / PRECINCT_FILE, required=True) or []
    sectors = _read_features(geo_dir / SECTOR_FILE, required=True) or []
    houses = _read_features(geo_dir / HOUSE_FILE, required=False) or []
    try:
        return load_geo_from_features(precincts, sectors, houses, max_distance_m=max_distance_m)
    except GeoDataMissing as exc:
        name = {"precinct": PRECINCT_FILE, "sector": SECTOR_FILE}.get(exc.source or "", "data")
        raise GeoDataMissing(f"Geography file {name} in {geo_dir}: {exc}", exc.source) from exc
