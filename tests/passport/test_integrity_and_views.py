"""Identifiers, signed hash chains, the lifecycle, and the tiered views."""

from __future__ import annotations

import copy
import csv
import json

import pytest

from critflow import data
from critflow.errors import CritflowError
from critflow.passport import chain as chains
from critflow.passport.datapoints import audiences, data_points
from critflow.passport.identity import DigitalLink, IdentifierError, gtin_check_digit, write_qr
from critflow.passport.integrity import SigningKey, read_envelopes, verify_chain
from critflow.passport.samples import sample_battery
from critflow.passport.views import view


def test_gtin_check_digits_of_published_examples():
    # GS1 General Specifications, check digit calculation example: 629104150021 → 3
    assert gtin_check_digit("629104150021") == 3
    assert DigitalLink.build("4006381333931", "A1").gtin == "04006381333931"
    with pytest.raises(IdentifierError, match="check digit 2, but its digits give 1"):
        DigitalLink.build("4006381333932", "A1")


def test_digital_link_round_trip_with_encoded_serial():
    link = DigitalLink.build("4006381333931", "AB/12%x", resolver="https://id.example.com/dl/")
    assert link.uri == "https://id.example.com/dl/01/04006381333931/21/AB%2F12%25x"
    assert DigitalLink.parse(link.uri) == link
    with pytest.raises(IdentifierError, match="1-20"):
        DigitalLink.build("4006381333931", "X" * 21)
    with pytest.raises(IdentifierError, match="no /01/<GTIN>/21/<serial> path"):
        DigitalLink.parse("https://id.gs1.org/01/04006381333931")


def test_qr_codes_are_written(tmp_path):
    uri = DigitalLink.build("4006381333931", "A1").uri
    png = write_qr(uri, tmp_path / "q.png")
    svg = write_qr(uri, tmp_path / "q.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()


@pytest.fixture()
def key():
    return SigningKey.generate()


def _chain(tmp_path, key, versions: int = 3):
    folder = tmp_path / "bat"
    document = sample_battery("ev")
    chains.issue(document, key, folder)
    for soc in range(1, versions):
        update = copy.deepcopy(document)
        update["data"]["state_of_charge"] = 80.0 - soc
        chains.append(folder, update, key)
    return folder


def _report(path, trusted=None):
    (versions,) = read_envelopes(path).values()
    return verify_chain(versions, trusted)


def test_chain_verifies_and_any_changed_byte_is_found(tmp_path, key):
    folder = _chain(tmp_path, key)
    assert _report(folder).ok
    target = folder / "v0002.json"
    original = target.read_bytes()
    # change one byte inside the document's state of charge, the signature, and the hash link
    for needle in (b'"state_of_charge": 79.0', b'"signature": "', b'"previous_hash": "sha256:'):
        position = original.index(needle) + len(needle) - 2 + (3 if needle.endswith(b'"') else 0)
        tampered = bytearray(original)
        tampered[position] = ord("7") if tampered[position] != ord("7") else ord("8")
        target.write_bytes(bytes(tampered))
        groups = read_envelopes(folder)
        broken = [verify_chain(v) for v in groups.values() if not verify_chain(v).ok]
        assert broken and "v0002.json" in broken[0].broken, needle
    target.write_bytes(original)
    assert _report(folder).ok


def test_missing_version_and_untrusted_key(tmp_path, key):
    folder = _chain(tmp_path, key)
    (folder / "v0002.json").unlink()
    assert "v0003.json: it is version 3, but version 2 is expected" in _report(folder).broken
    other = _chain(tmp_path / "other", key)
    report = _report(other, trusted={SigningKey.generate().public_key})
    assert "not among the trusted issuer keys" in report.broken


def test_repurposing_links_and_recycling_closes(tmp_path, key):
    folder = _chain(tmp_path, key, versions=1)
    second_life = sample_battery("industrial", serial="BAT-2ND-001")
    written = chains.change_status(
        folder, "repurposed", key, new_document=second_life, new_folder=tmp_path / "second"
    )
    old_last = json.loads(written[0].read_text())
    new_first = json.loads(written[1].read_text())
    assert new_first["record"]["links"][0]["hash"] == old_last["hash"]
    assert new_first["record"]["document"]["data"]["battery_status"] == "repurposed"
    assert old_last["record"]["links"][0]["passport_id"] == second_life["data"]["unique_identifier"]
    with pytest.raises(CritflowError, match="cannot move to 'recycled'"):
        chains.change_status(tmp_path / "second", "recycled", key)
    chains.change_status(tmp_path / "second", "waste", key)
    chains.change_status(tmp_path / "second", "recycled", key)
    report = _report(tmp_path / "second")
    assert report.ok and report.closed
    with pytest.raises(CritflowError, match="is closed"):
        chains.append(tmp_path / "second", second_life, key)


def _everything() -> dict:
    """A document with every one of the 71 data points filled (views only, not validation)."""
    document = sample_battery("ev")
    for point in data_points():
        document["data"].setdefault(point.field, f"value of {point.nr}")
    return document


def _readable_points() -> dict[str, set[int]]:
    """Which Annex XIII points each audience reads, straight from the shipped CSV."""
    with data.data_path("passport_access.csv").open() as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    result: dict[str, set[int]] = {}
    for row in rows:
        result.setdefault(row["audience"], set()).add(int(row["annex_xiii_point"]))
    return result


def test_every_data_point_for_every_audience():
    document = _everything()
    readable = _readable_points()
    assert set(readable) == set(audiences())
    for audience, points in readable.items():
        shown = view(document, audience)["data"]
        for point in data_points():
            assert (point.field in shown) == (point.annex_xiii_point in points), (
                audience,
                point.nr,
            )
    public = set(view(document, "public")["data"])
    for audience in readable:
        assert public <= set(view(document, audience)["data"])
    restricted = {p.field for p in data_points() if p.access_tier != "public"}
    assert not restricted & public
    authority = set(view(document, "authority")["data"])
    assert "test_report_results" in authority and "state_of_charge" not in authority
    assert "test_report_results" not in set(view(document, "legitimate_interest")["data"])


def test_unknown_audience_is_named():
    with pytest.raises(CritflowError, match="Did you mean 'authority'"):
        view(sample_battery(), "authorty")
