"""Parsing of 311 intake (board.intake.rows): real export, Socrata JSON, older layout, bad rows."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from board.intake.dates import new_york_text, parse_datetime
from board.intake.files import read_csv, read_json, read_rows
from board.intake.rows import NEW_YORK, BadRow, Request311, is_nypd, normalise_header, parse_row
from board.intake.text import MAX_TEXT
from board.settings import ROOT
from tests.conftest import OLD_HEADER

DATA = ROOT / "data" / "311"
HOUR = DATA / "nyc311-2022-05-01-midnight-hour.csv"


@pytest.fixture(scope="module")
def hour_rows() -> list[dict[str, str]]:
    assert HOUR.exists(), f"real 311 sample missing: {HOUR}"
    return list(read_csv(HOUR))


@pytest.fixture(scope="module")
def by_key(hour_rows) -> dict[str, dict[str, str]]:
    return {row["Unique Key"]: row for row in hour_rows}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- the real hour


def test_real_hour_counts_and_every_nypd_row_parses(hour_rows):
    assert len(hour_rows) == 924
    nypd = [row for row in hour_rows if is_nypd(row)]
    assert len(nypd) == 885

    parsed: list[Request311] = []
    failures: Counter[str] = Counter()
    for row in nypd:
        try:
            parsed.append(parse_row(row))
        except BadRow as exc:
            failures[exc.reason] += 1
    assert failures == Counter()
    assert len(parsed) == 885
    assert len({r.unique_key for r in parsed}) == 885

    assert all(r.agency == "NYPD" for r in parsed)
    assert all(r.created_at.tzinfo is UTC for r in parsed)
    assert Counter(r.status for r in parsed) == {"Closed": 480, "In Progress": 405}
    closed = [r for r in parsed if r.status == "Closed"]
    assert all(r.closed_at and r.resolution for r in closed)
    assert all(r.closed_at >= r.created_at for r in closed)
    # 9 BLOCKFACE rows carry no coordinates: they parse, with no point (unrouted queue)
    assert sum(1 for r in parsed if r.lat is None and r.lon is None) == 9
    assert Counter(r.complaint_type for r in parsed).most_common(3) == [
        ("Noise - Residential", 379),
        ("Noise - Street/Sidewalk", 159),
        ("Noise - Commercial", 116),
    ]
    # the non-NYPD rows parse too (the importer skips them before parsing)
    for row in hour_rows:
        parse_row(row)


def test_specific_row(by_key):
    req = parse_row(by_key["54049402"])
    assert req.unique_key == "54049402"
    # 05/01/2022 12:00:03 AM New York is EDT (UTC-4)
    assert req.created_at == utc(2022, 5, 1, 4, 0, 3)
    assert req.created_at.isoformat() == "2022-05-01T04:00:03+00:00"
    assert req.closed_at is None
    assert req.updated_at is None
    assert req.agency == "NYPD"
    assert req.complaint_type == "Noise - Residential"
    assert req.descriptor == "Loud Music/Party"
    assert req.location_type == "Residential Building/House"
    assert req.address == "1006 GERARD AVENUE"
    assert req.borough == "BRONX"
    assert req.zip == "10452"
    assert req.status == "In Progress"
    assert req.resolution == ""
    assert req.lat == 40.83065331987539
    assert req.lon == -73.92308231033165
    assert req.media_urls == ()
    # every non-empty source field, under its snake_case Socrata name
    assert req.fields["x_coordinate_state_plane"] == "1005536"
    assert req.fields["community_board"] == "04 BRONX"
    assert req.fields["location"] == "(40.83065331987539, -73.92308231033165)"
    assert "resolution_description" not in req.fields  # empty in the source
    assert "due_date" not in req.fields


def test_closed_row_dates_and_resolution(by_key):
    req = parse_row(by_key["54046813"])
    assert req.closed_at == utc(2022, 5, 1, 4, 7, 46)
    assert req.updated_at == utc(2022, 5, 1, 4, 7, 53)  # Resolution Action Updated Date
    assert req.resolution == (
        "The Police Department responded to the complaint and took action to fix the condition."
    )


def test_addresses_composed_for_intersection_blockface_and_subway(by_key):
    # Incident Address holds only one street on INTERSECTION rows
    assert parse_row(by_key["54047872"]).address == "EAST   55 STREET & LEXINGTON AVENUE"
    blockface = parse_row(by_key["54053199"])
    assert blockface.address == "GREENE STREET between CANAL STREET and GRAND STREET"
    assert blockface.lat is None and blockface.lon is None
    # subway rows: no address at all; line / platform come in the bridge-highway columns
    assert parse_row(by_key["54046236"]).address == "Subway: A, Stairway"


# --------------------------------------------------------------------------- Socrata JSON

# Socrata API (erm2-nwe9) renderings of three real rows of the sample file.
SOCRATA_ROWS = [
    {
        "unique_key": "54049402",
        "created_date": "2022-05-01T00:00:03.000",
        "agency": "NYPD",
        "agency_name": "New York City Police Department",
        "complaint_type": "Noise - Residential",
        "descriptor": "Loud Music/Party",
        "location_type": "Residential Building/House",
        "incident_zip": "10452",
        "incident_address": "1006 GERARD AVENUE",
        "street_name": "GERARD AVENUE",
        "cross_street_1": "EAST  164 STREET",
        "cross_street_2": "EAST  165 STREET",
        "intersection_street_1": "EAST  164 STREET",
        "intersection_street_2": "EAST  165 STREET",
        "address_type": "ADDRESS",
        "city": "BRONX",
        "landmark": "GERARD AVENUE",
        "status": "In Progress",
        "community_board": "04 BRONX",
        "bbl": "2024770001",
        "borough": "BRONX",
        "x_coordinate_state_plane": "1005536",
        "y_coordinate_state_plane": "241916",
        "open_data_channel_type": "ONLINE",
        "park_facility_name": "Unspecified",
        "park_borough": "BRONX",
        "latitude": "40.83065331987539",
        "longitude": "-73.92308231033165",
        "location": {
            "latitude": "40.83065331987539",
            "longitude": "-73.92308231033165",
            "human_address": '{"address": "", "city": "", "state": "", "zip": ""}',
        },
    },
    {
        "unique_key": "54046813",
        "created_date": "2022-05-01T00:00:09.000",
        "closed_date": "2022-05-01T00:07:46.000",
        "agency": "NYPD",
        "agency_name": "New York City Police Department",
        "complaint_type": "Noise - Street/Sidewalk",
        "descriptor": "Loud Music/Party",
        "location_type": "Street/Sidewalk",
        "incident_zip": "10027",
        "incident_address": "364 WEST  127 STREET",
        "street_name": "WEST  127 STREET",
        "cross_street_1": "ST NICHOLAS TERRACE",
        "cross_street_2": "CONVENT AVENUE",
        "address_type": "ADDRESS",
        "city": "NEW YORK",
        "status": "Closed",
        "resolution_description": "The Police Department responded to the complaint and took "
        "action to fix the condition.",
        "resolution_action_updated_date": "2022-05-01T00:07:53.000",
        "community_board": "09 MANHATTAN",
        "borough": "MANHATTAN",
        "latitude": "40.81237834836466",
        "longitude": "-73.95240115039357",
        "location": {"latitude": "40.81237834836466", "longitude": "-73.95240115039357"},
    },
    {
        # a BLOCKFACE row with no coordinates: Socrata omits null fields entirely
        "unique_key": "54053199",
        "created_date": "2022-05-01T00:10:53",
        "closed_date": "2022-05-01T02:02:14",
        "agency": "NYPD",
        "complaint_type": "Noise - Street/Sidewalk",
        "descriptor": "Loud Music/Party",
        "location_type": "Street/Sidewalk",
        "incident_zip": "10013",
        "incident_address": "GREENE STREET",
        "street_name": "GREENE STREET",
        "cross_street_1": "CANAL STREET",
        "cross_street_2": "GRAND STREET",
        "address_type": "BLOCKFACE",
        "status": "Closed",
        "resolution_description": "The Police Department responded to the complaint and took "
        "action to fix the condition.",
        "resolution_action_updated_date": "2022-05-01T02:02:12",
        "community_board": "Unspecified MANHATTAN",
        "borough": "MANHATTAN",
        "open_data_channel_type": "ONLINE",
    },
]


def test_socrata_json_rows_equal_csv_rows(by_key):
    for row in SOCRATA_ROWS:
        csv_req = parse_row(by_key[row["unique_key"]])
        json_req = parse_row(row)
        assert dataclasses.replace(json_req, fields={}) == dataclasses.replace(
            csv_req, fields={}
        ), row["unique_key"]
        # same snake_case names on both sides, for the fields both carry
        assert set(json_req.fields) <= set(csv_req.fields) | {"location"}


def test_socrata_location_object_used_when_lat_lon_absent():
    row = {k: v for k, v in SOCRATA_ROWS[1].items() if k not in ("latitude", "longitude")}
    req = parse_row(row)
    assert (req.lat, req.lon) == (40.81237834836466, -73.95240115039357)
    geojson = dict(row, location={"type": "Point", "coordinates": [-73.95, 40.81]})
    assert (parse_row(geojson).lat, parse_row(geojson).lon) == (40.81, -73.95)


def test_csv_location_column_used_when_lat_lon_empty(by_key):
    row = dict(by_key["54049402"], Latitude="", Longitude="")
    req = parse_row(row)
    assert (req.lat, req.lon) == (40.83065331987539, -73.92308231033165)
    wkt = dict(row, Location="POINT (-73.9 40.8)")
    assert (parse_row(wkt).lat, parse_row(wkt).lon) == (40.8, -73.9)
    garbage = dict(row, Location="somewhere in the Bronx")
    with pytest.raises(BadRow, match="unparseable location"):
        parse_row(garbage)


def test_socrata_updated_at_preferred_and_offset_honoured():
    row = dict(SOCRATA_ROWS[1], **{":updated_at": "2022-05-01T05:10:00.000Z"})
    req = parse_row(row)
    assert req.updated_at == utc(2022, 5, 1, 5, 10)
    assert req.fields["updated_at"] == "2022-05-01T05:10:00.000Z"


def test_read_json_array_and_json_lines(tmp_path):
    array = tmp_path / "page.json"
    array.write_text(json.dumps(SOCRATA_ROWS), encoding="utf-8")
    lines = tmp_path / "page.jsonl"
    lines.write_text(
        "\ufeff" + "\n".join(json.dumps(r) for r in SOCRATA_ROWS) + "\n\n", encoding="utf-8"
    )
    sniffed = tmp_path / "page.dat"
    sniffed.write_text("  \n" + json.dumps(SOCRATA_ROWS), encoding="utf-8")
    for path in (array, lines, sniffed):
        rows = list(read_rows(path))
        assert [r["unique_key"] for r in rows] == ["54049402", "54046813", "54053199"]
    assert list(read_json(array)) == list(read_json(lines))

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(SOCRATA_ROWS[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        list(read_json(broken))


# --------------------------------------------------------------------------- older exports



def old_export(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=OLD_HEADER, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_older_layout_export(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text(
        "\ufeff"
        + old_export(
            [
                {
                    "Unique Key": "26593752",
                    "Created Date": "10/31/2013 11:58:21 PM",
                    "Closed Date": "11/01/2013 01:41:00 AM",
                    "Agency": "nypd",
                    "Agency Name": "New York City Police Department",
                    "Complaint Type": "Noise - Street/Sidewalk",
                    "Descriptor": "Loud Talking",
                    "Location Type": "Street/Sidewalk",
                    "Incident Zip": "11211",
                    "Incident Address": "200 BEDFORD AVENUE",
                    "Address Type": "ADDRESS",
                    "Status": "Closed",
                    "Due Date": "11/01/2013 07:58:21 AM",
                    "Resolution Action Updated Date": "11/01/2013 01:41:00 AM",
                    "Borough": "BROOKLYN",
                    "School Name": "Unspecified",
                    "School Number": "Unspecified",
                    "School Not Found": "N",
                    "Latitude": "40.71706",
                    "Longitude": "-73.95836",
                    "Location": "(40.71706, -73.95836)",
                },
                {
                    "Unique Key": "26593753",
                    "Created Date": "10/31/2013 11:59:00 PM",
                    "Agency": "DSNY",
                },
            ]
        ),
        encoding="utf-8",
    )
    rows = list(read_rows(path))
    assert [is_nypd(r) for r in rows] == [True, False]
    req = parse_row(rows[0])
    assert req.unique_key == "26593752"
    assert req.agency == "NYPD"
    assert req.created_at == utc(2013, 11, 1, 3, 58, 21)  # EDT until 3 Nov 2013
    assert req.closed_at == utc(2013, 11, 1, 5, 41)
    assert req.updated_at == req.closed_at
    assert req.resolution == ""  # no such column
    assert req.address == "200 BEDFORD AVENUE"
    assert (req.lat, req.lon) == (40.71706, -73.95836)
    assert req.fields["school_name"] == "Unspecified"
    assert req.fields["school_not_found"] == "N"
    assert "resolution_description" not in req.fields


def test_aliases_and_header_normalisation():
    assert normalise_header("X Coordinate (State Plane)") == "x_coordinate_state_plane"
    assert normalise_header("Unique Key") == "unique_key"
    assert normalise_header(":updated_at") == "updated_at"
    # Open311-style names for the same concepts
    req = parse_row(
        {
            "service_request_id": "A-1",
            "requested_datetime": "2022-05-01T00:00:03-04:00",
            "agency": "NYPD",
            "status_notes": "Gone on arrival.",
            "address": "1 POLICE PLAZA",
            "zipcode": "10038",
            "lat": "40.7126",
            "long": "-74.0014",
        }
    )
    assert req.unique_key == "A-1"
    assert req.created_at == utc(2022, 5, 1, 4, 0, 3)
    assert (req.resolution, req.address, req.zip) == ("Gone on arrival.", "1 POLICE PLAZA", "10038")
    assert (req.lat, req.lon) == (40.7126, -74.0014)
    # the canonical column wins over an alias
    both = parse_row({"Unique Key": "1", "Created Date": "05/01/2022 12:00:00 AM",
                      "Address": "alias", "Incident Address": "canonical"})  # fmt: skip
    assert both.address == "canonical"


# --------------------------------------------------------------------------- bad rows


@pytest.fixture
def good(by_key) -> dict[str, str]:
    return dict(by_key["54049402"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Unique Key": None}, "missing unique key"),
        ({"Unique Key": "   "}, "blank unique key"),
        ({"Created Date": "13/45/2022 99:00"}, "unparseable created date: '13/45/2022 99:00'"),
        ({"Created Date": ""}, "missing created date"),
        ({"Closed Date": "yesterday"}, "unparseable closed date: 'yesterday'"),
        ({"Latitude": "123"}, "latitude out of range: 123.0"),
        ({"Longitude": "-500"}, "longitude out of range: -500.0"),
        ({"Latitude": "forty"}, "non-numeric latitude: 'forty'"),
        ({"Longitude": "nan"}, "non-numeric longitude: 'nan'"),
    ],
)
def test_bad_rows(good, change, reason):
    row = dict(good)
    for key, value in change.items():
        if value is None:
            del row[key]
        else:
            row[key] = value
    with pytest.raises(BadRow) as info:
        parse_row(row)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_empty_coordinates_are_not_bad(good):
    req = parse_row(dict(good, Latitude="", Longitude="", Location=""))
    assert (req.lat, req.lon) == (None, None)


def test_csv_row_with_extra_cells_is_bad(tmp_path, hour_rows):
    path = tmp_path / "extra.csv"
    path.write_text("Unique Key,Created Date,Agency\n1,05/01/2022 12:00:00 AM,NYPD,surprise\n")
    (row,) = list(read_rows(path))
    assert is_nypd(row)
    with pytest.raises(BadRow, match="more cells than the header"):
        parse_row(row)


def test_is_nypd():
    assert is_nypd({"Agency": "NYPD"})
    assert is_nypd({"agency": " nypd "})
    assert not is_nypd({"Agency": "DSNY"})
    assert not is_nypd({"Agency Name": "New York City Police Department"})  # no agency column
    assert not is_nypd({})


# --------------------------------------------------------------------------- time zones


def test_dst_winter_is_utc_minus_5():
    assert parse_datetime("01/15/2022 11:30:00 PM") == utc(2022, 1, 16, 4, 30)
    assert parse_datetime("2022-01-15T23:30:00.000") == utc(2022, 1, 16, 4, 30)
    assert parse_datetime("01/15/2022 23:30:00") == utc(2022, 1, 16, 4, 30)


def test_summer_is_utc_minus_4_and_offsets_honoured():
    assert parse_datetime("07/04/2022 12:00:00 PM") == utc(2022, 7, 4, 16)
    assert parse_datetime("2022-07-04T12:00:00") == utc(2022, 7, 4, 16)
    assert parse_datetime("2022-07-04T12:00:00Z") == utc(2022, 7, 4, 12)
    assert parse_datetime("2022-07-04T12:00:00.5+02:00") == utc(2022, 7, 4, 10, 0, 0, 500000)


def test_dst_transitions():
    # spring forward 13 Mar 2022: 01:59:59 EST then 03:00:00 EDT, one second apart
    before = parse_datetime("03/13/2022 01:59:59 AM")
    after = parse_datetime("03/13/2022 03:00:00 AM")
    assert after - before == timedelta(seconds=1)
    # fall back 6 Nov 2022: the repeated hour is read as its first (EDT) occurrence
    assert parse_datetime("11/06/2022 01:30:00 AM") == utc(2022, 11, 6, 5, 30)
    assert parse_datetime("11/06/2022 02:30:00 AM") == utc(2022, 11, 6, 7, 30)


def _transition_days(first: int, last: int) -> list[datetime]:
    """Every day New York changed its offset (DST, war time, the 1974 winter) in the years."""
    day, end, days = datetime(first, 1, 1), datetime(last + 1, 1, 1), []
    while day < end:
        after = day + timedelta(days=1)
        if day.replace(tzinfo=NEW_YORK).utcoffset() != after.replace(tzinfo=NEW_YORK).utcoffset():
            days.append(day)
        day = after
    return days


def test_export_times_read_by_the_hour_equal_a_time_zone_lookup():
    """The export's dates are read through a table of hours; every hour of every day New York
    changed its offset (1900-2040) and random moments read as a zoneinfo lookup reads them."""
    rng = random.Random(9)
    moments = [day + timedelta(days=shift, hours=hour, minutes=minute, seconds=second)
               for day in _transition_days(1900, 2040) for shift in (0, 1) for hour in range(24)
               for minute, second in ((0, 0), (30, 15), (59, 59))]
    assert len(moments) > 200 * 2 * 24 * 3  # 240 days since 1918, the first DST
    moments += [datetime(1850, 1, 1) + timedelta(seconds=rng.randrange(250 * 365 * 86400))
                for _ in range(20_000)]
    moments.append(datetime(1883, 11, 18, 12, 5, 0))  # New York's 12:03:58 change to EST
    for t in moments:
        text, local = f"{t:%m/%d/%Y %I:%M:%S %p}", t.replace(tzinfo=NEW_YORK)
        assert parse_datetime(text) == local.astimezone(UTC), text
        assert new_york_text(text) == local.astimezone(UTC).astimezone(NEW_YORK).isoformat(), text
    # the skipped hour reads as standard time and writes as the daylight time it is
    assert new_york_text("03/13/2022 02:30:00 AM") == "2022-03-13T03:30:00-04:00"
    assert new_york_text("11/06/2022 01:30:00 AM") == "2022-11-06T01:30:00-04:00"
    assert new_york_text("2022-05-01T00:00:03.000") == "2022-05-01T00:00:03-04:00"
    for bad in ("02/30/2022 10:00:00 AM", "01/01/2022 10:60:00 AM", "01/01/2022 10:00:60 AM",
                "01/01/2022 13:00:00 PM", "01/01/2022 00:00:00 AM"):
        with pytest.raises(ValueError):
            new_york_text(bad)
        with pytest.raises(ValueError):
            parse_datetime(bad)


# --------------------------------------------------------------------------- hostile input


def test_hostile_text_is_stripped_and_capped(good):
    row = dict(
        good,
        Descriptor="  <script>alert(1)</script>\x00\x07\x1b[31m" + "A" * 10_000,
        **{"Complaint Type": "Noise\r\n- Residential\u202e\t"},
        **{"Incident Address": "1 MAIN ST\x00\x00"},
    )
    req = parse_row(row)
    assert len(req.descriptor) == MAX_TEXT
    assert req.descriptor.startswith("<script>alert(1)</script>[31mAAA")  # escaping: templates
    assert req.complaint_type == "Noise  - Residential"
    assert req.address == "1 MAIN ST"
    for value in [*req.fields.values(), req.descriptor, req.complaint_type]:
        assert len(value) <= MAX_TEXT
        assert not any(unicodedata.category(ch) == "Cc" for ch in value)
        assert "\u202e" not in value


def test_media_urls_http_only(good):
    row = dict(
        good,
        **{
            "Media URL": "https://example.org/a.jpg javascript:alert(1)",
            "photo_url": "http://example.org/b.png, data:text/html;base64,AAAA, ftp://x/y",
        },
    )
    req = parse_row(row)
    assert req.media_urls == ("https://example.org/a.jpg", "http://example.org/b.png")
    socrata = dict(SOCRATA_ROWS[0], media_url={"url": "https://example.org/c.jpg"})
    assert parse_row(socrata).media_urls == ("https://example.org/c.jpg",)
    listed = dict(SOCRATA_ROWS[0], photo_urls=["JAVASCRIPT:x", "https://example.org/d.jpg"])
    assert parse_row(listed).media_urls == ("https://example.org/d.jpg",)


def test_request_is_frozen_and_hashable(good):
    req = parse_row(good)
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.status = "Closed"  # type: ignore[misc]
    assert hash(req) == hash(parse_row(dict(good)))


# --------------------------------------------------------------------------- streams and gaps


def test_a_json_array_is_read_one_item_at_a_time_whatever_its_layout(tmp_path):
    rows = [{"unique_key": str(i), "note": "x" * (i * 3000), "nested": {"a": [i, "]"]}}
            for i in range(60)]  # items larger than a read chunk, and brackets inside strings
    path = tmp_path / "big.json"
    path.write_text(json.dumps(rows, indent=2))
    assert list(read_json(path)) == rows
    path.write_text(" [ {\"a\": 1} ,\n{\"b\": 2}]  \n")
    assert list(read_json(path)) == [{"a": 1}, {"b": 2}]
    for broken, message in [('[{"a": 1} {"b": 2}]', "expected ',' or ']' in item 1"),
                            ('[{"a": 1},', "in item 1"), ('[{"a": 1}] x', "extra data"),
                            ('[{"a": 1}, 2]', "item 1 is not a JSON object")]:
        path.write_text(broken)
        with pytest.raises(ValueError, match=message):
            list(read_json(path))


def test_csv_lines_longer_or_shorter_than_the_header_are_marked(tmp_path):
    from board.intake.rows import SHORT_ROW, short_row_reason

    path = tmp_path / "rows.csv"
    path.write_text("Unique Key,Created Date,Agency,Descriptor\n"
                    "1,05/01/2022 12:00:00 AM,NYPD,Loud\n"
                    "2,05/01/2022 12:00:00 AM,NYPD\n"
                    "\n"
                    "3,05/01/2022 12:00:00 AM\n")
    full, after_agency, before_agency = list(read_rows(path))
    assert SHORT_ROW not in full
    assert after_agency[SHORT_ROW] == "Descriptor"
    assert before_agency[SHORT_ROW] == "Agency" and "Agency" not in before_agency
    assert short_row_reason(before_agency) == (
        "row ends before the Agency column (2 cells; was the file cut short?)")
    with pytest.raises(BadRow, match="row ends before the Descriptor column"):
        parse_row(after_agency)


def test_a_long_cell_is_a_bad_row_and_a_key_must_be_a_value(good):
    with pytest.raises(BadRow, match="cell 'descriptor' is 131,073 characters long"):
        parse_row(dict(good, Descriptor="d" * (128 * 1024 + 1)))
    assert parse_row(dict(good, Descriptor="d" * 3000)).cut == {"descriptor": 3000}
    assert parse_row(dict(good, **{"Unique Key": 42})).unique_key == "42"
    for key, kind in ((["A"], "list"), ({"k": "A"}, "object"), (False, "boolean"),
                      (4.5, "number")):
        with pytest.raises(BadRow, match=f"unique key is a JSON {kind}, not a string"):
            parse_row(dict(good, **{"Unique Key": key}))


def test_dates_outside_what_311_can_have(good):
    from board.intake.rows import check_dates

    now = utc(2026, 11, 28, 22)
    check_dates(parse_row(good), now)
    ahead = parse_row(dict(good, **{"Created Date": "11/29/2026 04:59:59 PM"}))
    check_dates(ahead, now)  # 22:59:59 UTC tomorrow: within a day
    for change, message in [
        ({"Created Date": "11/29/2026 05:00:01 PM"}, "created date 2026-11-29 17:00:01 is in "
                                                     "the future"),
        ({"Created Date": "01/01/0001 12:00:00 AM"}, "before NYC 311 began"),
        ({"Closed Date": "05/01/2022 12:00:02 AM"}, "closed date 2022-05-01 00:00:02 is before "
                                                    "the created date 2022-05-01 00:00:03"),
    ]:
        with pytest.raises(BadRow, match=message):
            check_dates(parse_row(dict(good, **change)), now)
