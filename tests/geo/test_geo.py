"""Routing against the city's real precinct and sector polygons and one real hour of 311."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Point, shape

from board.geo.routing import GeoDataMissing, GeoIndex, Route, load_geo, load_geo_from_features
from board.settings import ROOT

DATA = ROOT / "data"
NYC = DATA / "nyc"
HOUR_CSV = DATA / "311" / "nyc311-2022-05-01-midnight-hour.csv"

M_PER_DEG_LAT = 110_540.0  # the module's projection, used to place test points in metres


def _features(name: str) -> list[dict]:
    return json.loads((NYC / name).read_text(encoding="utf-8"))["features"]


def _coord(text: str) -> float | None:
    return float(text) if text.strip() else None


@pytest.fixture(scope="module")
def geo() -> GeoIndex:
    return load_geo(NYC)


@pytest.fixture(scope="module")
def nypd_rows() -> list[dict]:
    with HOUR_CSV.open(newline="", encoding="utf-8") as fh:
        return [row for row in csv.DictReader(fh) if row["Agency"] == "NYPD"]


@pytest.fixture(scope="module")
def raw_precincts() -> list[tuple[str, object]]:
    """Precinct polygons straight from the file, WGS84, no index: the independent check."""
    return [
        (f["properties"]["precinct"], shape(f["geometry"])) for f in _features("precinct.geojson")
    ]


@pytest.fixture(scope="module")
def raw_sectors() -> dict[str, object]:
    return {f["properties"]["sector"]: shape(f["geometry"]) for f in _features("sector.geojson")}


# -- loading -----------------------------------------------------------------------------------


def test_loads_every_precinct_and_sector(geo: GeoIndex) -> None:
    precincts = geo.precincts()
    assert len(precincts) == 78
    assert precincts == sorted(precincts, key=int)  # numeric, not "1", "10", "100"
    assert precincts[:3] == ["1", "5", "6"] and precincts[-1] == "123"
    assert "116" in precincts  # the precinct created in 2025
    assert sum(len(geo.sectors_of(p)) for p in precincts) == 303
    assert all(geo.sectors_of(p) for p in precincts)


def test_sectors_of_a_precinct_belong_to_it(geo: GeoIndex) -> None:
    sectors = geo.sectors_of("75")
    assert sectors
    assert all(s.startswith("75") and not s[2].isdigit() for s in sectors)
    assert [f["properties"]["sector"] for f in geo.sector_features("75")] == sectors
    assert geo.sectors_of("999") == [] and geo.sector_features("999") == []


def test_features_are_the_original_wgs84_dicts(geo: GeoIndex) -> None:
    feature = geo.precinct_feature("75")
    assert feature is not None
    assert feature["type"] == "Feature" and feature["properties"]["precinct"] == "75"
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    assert -75 < lon < -73 and 40 < lat < 41
    assert geo.precinct_feature("999") is None


def test_precinct_bounds_are_south_west_north_east(geo: GeoIndex) -> None:
    south, west, north, east = geo.precinct_bounds("75")
    assert 40.5 < south < north < 41 and -74.3 < west < east < -73.7
    inner = shape(geo.precinct_feature("75")["geometry"]).representative_point()
    assert south <= inner.y <= north and west <= inner.x <= east
    with pytest.raises(KeyError):
        geo.precinct_bounds("999")


def test_station_houses(geo: GeoIndex) -> None:
    house = geo.station_house("75")
    assert house is not None and set(house) == {"lat", "lon", "address"}
    assert "Brooklyn" in house["address"]
    # The file has 77 houses (none for the 22nd, Central Park); each sits in its own precinct.
    houses = {p: geo.station_house(p) for p in geo.precincts()}
    assert [p for p, h in houses.items() if h is None] == ["22"]
    for precinct, h in houses.items():
        if h is not None:
            route = geo.route(h["lat"], h["lon"])
            assert (route.precinct, route.method) == (precinct, "inside")
    # One house has STREET null and its street in STREET0; the address must still say it.
    assert geo.station_house("77")["address"].startswith("127 Utica Avenue")


# -- routing the real hour ---------------------------------------------------------------------


def test_real_hour_routes_like_a_brute_force_point_in_polygon(
    geo: GeoIndex, nypd_rows: list[dict], raw_precincts: list, raw_sectors: dict
) -> None:
    assert len(nypd_rows) == 885
    methods: Counter[str] = Counter()
    for row in nypd_rows:
        lat, lon = _coord(row["Latitude"]), _coord(row["Longitude"])
        route = geo.route(lat, lon)
        methods[route.method] += 1
        if lat is None or lon is None:
            assert route == Route(None, None, "unrouted", math.inf), row["Unique Key"]
            continue
        point = Point(lon, lat)
        containing = [p for p, poly in raw_precincts if poly.contains(point)]
        if containing:
            assert len(containing) == 1, row["Unique Key"]
            assert route.method == "inside" and route.distance_m == 0.0
            assert route.precinct == containing[0], row["Unique Key"]
            assert route.sector in geo.sectors_of(route.precinct), row["Unique Key"]
            assert raw_sectors[route.sector].contains(point), row["Unique Key"]
        else:  # nothing is dropped: a fallback or the unrouted queue, never an exception
            assert route.method in ("nearest", "unrouted"), row["Unique Key"]
    # The data README says "876 inside, 9 just outside"; in fact the 9 have no coordinates at
    # all, so every row with a position is inside a precinct and the 9 go to the unrouted queue.
    assert methods == {"inside": 876, "unrouted": 9}
    assert sum(1 for r in nypd_rows if not r["Latitude"].strip()) == 9


def test_real_hour_routes_well_under_a_second(geo: GeoIndex, nypd_rows: list[dict]) -> None:
    points = [(_coord(r["Latitude"]), _coord(r["Longitude"])) for r in nypd_rows]
    start = time.perf_counter()
    routes = [geo.route(lat, lon) for lat, lon in points]
    elapsed = time.perf_counter() - start
    assert len(routes) == 885
    assert elapsed < 1.0, f"routing 885 points took {elapsed:.3f}s"
    assert len({r.precinct for r in routes if r.precinct}) == 77  # README: 77 precincts


# -- known points ------------------------------------------------------------------------------


def test_point_well_inside_precinct_75(geo: GeoIndex) -> None:
    inner = shape(geo.precinct_feature("75")["geometry"]).representative_point()
    route = geo.route(inner.y, inner.x)
    assert route.precinct == "75" and route.method == "inside" and route.distance_m == 0.0
    assert route.sector in geo.sectors_of("75")


def test_every_precinct_and_sector_routes_to_itself(geo: GeoIndex) -> None:
    for precinct in geo.precincts():
        inner = shape(geo.precinct_feature(precinct)["geometry"]).representative_point()
        assert geo.route(inner.y, inner.x).precinct == precinct
        for feature in geo.sector_features(precinct):
            inner = shape(feature["geometry"]).representative_point()
            route = geo.route(inner.y, inner.x)
            assert (route.precinct, route.sector) == (precinct, feature["properties"]["sector"])


def _south_of_tottenville(metres: float) -> tuple[float, float]:
    """A point in Raritan Bay, `metres` due south of the city's southernmost vertex (123rd)."""
    feature = next(f for f in _features("precinct.geojson") if f["properties"]["precinct"] == "123")
    lon, lat = min(shapely.get_coordinates(shape(feature["geometry"])), key=lambda c: c[1])
    return float(lat) - metres / M_PER_DEG_LAT, float(lon)


def test_just_offshore_goes_to_the_nearest_precinct(geo: GeoIndex) -> None:
    lat, lon = _south_of_tottenville(150)
    route = geo.route(lat, lon)
    assert route.method == "nearest" and route.precinct == "123"
    assert route.distance_m == pytest.approx(150, abs=0.01)  # due south of the lowest vertex
    assert route.sector in geo.sectors_of("123")


def test_too_far_offshore_is_unrouted_unless_the_distance_allows(geo: GeoIndex) -> None:
    lat, lon = _south_of_tottenville(1000)
    route = geo.route(lat, lon)
    assert (route.precinct, route.sector, route.method) == (None, None, "unrouted")
    assert route.distance_m == pytest.approx(1000, abs=0.01)
    wider = load_geo_from_features(*geo.feature_lists(), max_distance_m=2000)
    assert wider.route(lat, lon).method == "nearest"
    assert wider.route(lat, lon).precinct == "123"


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (None, None),
        (40.7, None),
        (None, -73.9),
        (math.nan, -73.9),
        (40.7, math.inf),
        (0.0, 0.0),  # null island: a failed geocode, not a place
        (91.0, -73.9),
        (40.7, -181.0),
    ],
)
def test_unusable_coordinates_are_unrouted(geo: GeoIndex, lat: float | None, lon: float | None):
    assert geo.route(lat, lon) == Route(None, None, "unrouted", math.inf)


def test_boston_is_unrouted(geo: GeoIndex) -> None:
    route = geo.route(42.36, -71.06)
    assert (route.precinct, route.sector, route.method) == (None, None, "unrouted")
    assert route.distance_m > 250_000  # about 300 km from the nearest precinct


def test_route_is_frozen(geo: GeoIndex) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        geo.route(40.7, -73.9).precinct = "1"  # type: ignore[misc]


# -- storing and rebuilding --------------------------------------------------------------------


def test_feature_lists_survive_json_and_rebuild_the_same_index(
    geo: GeoIndex, nypd_rows: list[dict]
) -> None:
    precincts, sectors, houses = json.loads(json.dumps(geo.feature_lists()))
    assert (len(precincts), len(sectors), len(houses)) == (78, 303, 77)
    rebuilt = load_geo_from_features(precincts, sectors, houses)
    for row in nypd_rows:
        lat, lon = _coord(row["Latitude"]), _coord(row["Longitude"])
        assert rebuilt.route(lat, lon) == geo.route(lat, lon)
    assert rebuilt.station_house("75") == geo.station_house("75")


# -- missing or broken data --------------------------------------------------------------------


def test_missing_dir_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(GeoDataMissing) as err:
        load_geo(tmp_path / "nowhere")
    message = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert "precinct.geojson" in message and "sector.geojson" in message
    assert "BOARD_GEO_DIR" in message and "Police Precincts" in message


def test_missing_sector_file_is_named(tmp_path: Path) -> None:
    shutil.copy(NYC / "precinct.geojson", tmp_path)
    with pytest.raises(GeoDataMissing, match="sector.geojson") as err:
        load_geo(tmp_path)
    assert "BOARD_GEO_DIR" in str(err.value)


def test_unparseable_precinct_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "precinct.geojson").write_text("<html>rate limited</html>", encoding="utf-8")
    shutil.copy(NYC / "sector.geojson", tmp_path)
    with pytest.raises(GeoDataMissing, match="precinct.geojson") as err:
        load_geo(tmp_path)
    assert "BOARD_GEO_DIR" in str(err.value) and "Police Precincts" in str(err.value)


def test_station_houses_are_optional(tmp_path: Path) -> None:
    shutil.copy(NYC / "precinct.geojson", tmp_path)
    shutil.copy(NYC / "sector.geojson", tmp_path)
    geo = load_geo(tmp_path)
    assert len(geo.precincts()) == 78 and geo.station_house("75") is None
    inner = shape(geo.precinct_feature("75")["geometry"]).representative_point()
    assert geo.route(inner.y, inner.x).precinct == "75"


def test_projected_coordinates_are_refused(tmp_path: Path) -> None:
    """A State Plane export (feet, not degrees) would route nothing; say so at load time."""
    square = [
        [[1_000_000, 200_000], [1_001_000, 200_000], [1_001_000, 201_000], [1_000_000, 200_000]]
    ]
    feature = {
        "type": "Feature",
        "properties": {"precinct": "1"},
        "geometry": {"type": "Polygon", "coordinates": square},
    }
    (tmp_path / "precinct.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8"
    )
    (tmp_path / "sector.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": []}), encoding="utf-8"
    )
    with pytest.raises(GeoDataMissing, match="WGS84") as err:
        load_geo(tmp_path)
    assert "precinct.geojson" in str(err.value)


def test_route_many_is_route_for_each_point(
    geo: GeoIndex, nypd_rows: list[dict], raw_precincts: list, raw_sectors: dict
) -> None:
    """Intake routes a batch at once: the same Route as one by one, ties and fallbacks too."""
    # vertices lie on the edges neighbours share: the lowest-number tie-break decides them
    vertices = [(float(y), float(x)) for _, poly in raw_precincts[::3]
                for x, y in shapely.get_coordinates(poly)[::40]]
    vertices += [(float(y), float(x)) for poly in list(raw_sectors.values())[::7]
                 for x, y in shapely.get_coordinates(poly)[::40]]
    on_edges = [(lat, lon) for lat, lon in vertices
                if sum(poly.covers(Point(lon, lat)) for _, poly in raw_precincts) > 1]
    assert len(on_edges) > 10  # shared edges are in the sample
    points: list[tuple[float | None, float | None]] = [
        (_coord(r["Latitude"]), _coord(r["Longitude"])) for r in nypd_rows]
    points += vertices + [_south_of_tottenville(150), _south_of_tottenville(1000), (42.36, -71.06),
               (None, None), (40.7, None), (math.nan, -73.9), (0.0, 0.0), (91.0, -73.9)]
    one_by_one = [geo.route(lat, lon) for lat, lon in points]
    assert geo.route_many(points) == one_by_one
    methods = Counter(r.method for r in one_by_one)
    assert methods["inside"] > 1000 and methods["nearest"] >= 1 and methods["unrouted"] >= 10
    assert geo.route_many([]) == []
