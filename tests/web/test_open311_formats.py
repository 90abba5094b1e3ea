"""Open311 speaks the whole GeoReport v2 spec (issue 10 defect 10): both formats (XML is the
spec's default) on every resource, and service definitions. Checked with the published client
library georeport 0.3.1 against the real app over a real socket, in JSON and in XML, and with
plain requests where the library has no call (it cannot create)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest
import sqlalchemy as sa
from georeport import GeoReport

from board.auth import accounts as auth
from board.storage import db
from board.storage.schema import jobs
from tests.conftest import point_in

V2 = "/open311/v2"


@pytest.fixture
def admin_key(world) -> str:
    return auth.create_token(world.dispatch.engine, "admin", "open311")


def xml_of(resp: httpx.Response) -> ET.Element:
    assert resp.headers["content-type"].startswith("text/xml"), resp.headers
    return ET.fromstring(resp.content)


def file_over_http(base: str, key: str, fmt: str, **fields: str) -> httpx.Response:
    return httpx.post(f"{base}{V2}/requests.{fmt}", data={"api_key": key, **fields})


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_georeport_client_reads_services_definitions_and_requests(
        world, live_server, admin_key, fmt):
    base = live_server.url
    client = GeoReport(f"{base}{V2}", jurisdiction="nyc.gov", api_key=admin_key,
                       output_format=fmt)

    listed = {s["service_code"]: s for s in client.get_service_list()}
    assert listed["blocked-driveway"]["service_name"] == "Blocked Driveway"
    assert listed["noise-residential"]["group"] == "NYPD"

    definition = client.get_service_definition("blocked-driveway")
    assert definition["service_code"] == "blocked-driveway"
    attributes = definition["attributes"]
    attribute = attributes[0] if fmt == "json" else attributes["attribute"]
    assert attribute["code"] == "descriptor" and attribute["datatype"] == "singlevaluelist"
    values = attribute["values"] if fmt == "json" else attribute["values"]["value"]
    values = values if isinstance(values, list) else [values]
    assert {"key": "No Access", "name": "No Access"} in values

    # file one (the library has no create call: a plain form post, as the spec says)
    lat, lon = point_in(world.dispatch.geo, "75")
    created = file_over_http(base, admin_key, fmt, service_code="blocked-driveway",
                             lat=str(lat), long=str(lon), address_string="1 FULTON ST",
                             description="car across <my> driveway & gate",
                             **{"attribute[descriptor]": "No Access"})
    assert created.status_code == 200, created.text
    if fmt == "json":
        job_id = created.json()[0]["service_request_id"]
    else:
        [request] = xml_of(created).findall("request")
        job_id = request.findtext("service_request_id")

    one = client.get_service_request(job_id)
    assert one["service_request_id"] == job_id and one["status"] == "open"
    assert one["service_code"] == "blocked-driveway"
    listed_requests = client.get_service_requests(service_request_id=job_id)
    found = listed_requests if isinstance(listed_requests, list) else [listed_requests]
    assert [r["service_request_id"] for r in found] == [job_id]

    # the descriptor attribute reached the job, and so its priority (No Access is P1)
    with db.read(world.dispatch.engine) as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == int(job_id))).one()
    assert (row.descriptor, row.priority) == ("No Access", 1)


def test_xml_documents_are_the_spec_shape_and_escaped(world, client, admin_key):
    lat, lon = point_in(world.dispatch.geo, "75")
    made = client.post(f"{V2}/requests.xml", data={
        "api_key": admin_key, "service_code": "noise-residential", "lat": str(lat),
        "long": str(lon), "description": 'a </description><x>"&'})
    assert made.status_code == 200
    root = xml_of(made)
    assert root.tag == "service_requests"
    job_id = root.find("request/service_request_id").text

    shown = client.get(f"{V2}/requests/{job_id}.xml", params={"api_key": admin_key})
    request = xml_of(shown).find("request")
    assert request.findtext("description") == 'a </description><x>"&'  # escaped, read back
    assert request.findtext("status") == "open" and request.findtext("lat") == str(lat)
    assert b"&lt;/description&gt;" in shown.content

    services = xml_of(client.get(f"{V2}/services.xml"))
    assert services.tag == "services" and services.find("service/service_code") is not None
    assert {s.findtext("metadata") for s in services} == {"true", "false"}

    plain = xml_of(client.get(f"{V2}/services/encampment.xml"))
    assert plain.tag == "service_definition" and plain.findtext("service_code") == "encampment"
    assert list(plain.find("attributes")) == []
    assert client.get(f"{V2}/services/encampment.json").json() == {
        "service_code": "encampment", "attributes": []}

    resolutions = client.get(f"{V2}/resolutions.xml", params={"api_key": admin_key})
    assert xml_of(resolutions).tag == "resolutions"


def test_errors_come_in_the_format_asked(world, client, admin_key):
    for fmt in ("json", "xml"):
        missing = client.get(f"{V2}/services/pothole.{fmt}")
        bad = client.post(f"{V2}/requests.{fmt}", data={"api_key": admin_key,
                                                        "service_code": "noise-residential",
                                                        "lat": "north", "long": "1"})
        wrong = client.post(f"{V2}/requests.{fmt}", data={
            "api_key": admin_key, "service_code": "blocked-driveway", "address_string": "x",
            "attribute[descriptor]": "Loud Music"})
        for resp, status in ((missing, 404), (bad, 400), (wrong, 400)):
            assert resp.status_code == status
            if fmt == "json":
                [err] = resp.json()
                code, text = err["code"], err["description"]
            else:
                root = xml_of(resp)
                assert root.tag == "errors"
                code, text = int(root.findtext("error/code")), root.findtext("error/description")
            assert code == status and text
        assert "lat must be a number" in (bad.text)
    assert client.get(f"{V2}/services.yaml").status_code == 404
    with db.read(world.dispatch.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 0


def test_text_xml_cannot_carry_is_dropped_not_sent_broken():
    """A 311 row imported with a control character still gives a document parsers accept."""
    from board.web.open311_format import to_xml

    doc = to_xml("service_requests", [{"description": "Loud\x07 Music\x00", "lat": None,
                                       "closed": True, "tags": ["a&b", "<c>"]}])
    root = ET.fromstring(doc)
    assert root.findtext("request/description") == "Loud Music"
    assert root.findtext("request/lat") == "" and root.findtext("request/closed") == "true"
    assert [e.text for e in root.find("request/tags")] == ["a&b", "<c>"]
    assert doc.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
