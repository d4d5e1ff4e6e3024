"""Identifiers, signed hash chains, the lifecycle, and the tiered views."""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow import data
from critflow.errors import CritflowError
from critflow.passport import chain as chains
from critflow.passport.datapoints import audiences, data_points
from critflow.passport.identity import DigitalLink, IdentifierError, gtin_check_digit, write_qr
from critflow.passport.integrity import (
    SigningKey,
    b64decode_strict,
    canonical,
    key_id,
    new_record,
    read_envelopes,
    verify_chain,
    verify_signature,
)
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


def test_ed25519_and_base64url_against_published_vectors():
    # RFC 8032 section 7.1, TEST 1: public key and signature of the empty message
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    encode = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    assert verify_signature(encode(public), encode(signature), b"") is None
    assert "does not verify" in verify_signature(encode(public), encode(signature), b"x")
    assert key_id(encode(public)) == hashlib.sha256(public).hexdigest()[:16]
    # RFC 4648 section 10 vectors (base64url, padding dropped): "fo" is Zm8; Zm9 differs only
    # in the unused bits of its last character and is refused
    assert b64decode_strict("Zm9vYmFy", 6, "x") == b"foobar"
    assert b64decode_strict("Zm8", 2, "x") == b"fo"
    for bad, why in (
        ("Zm9", "unused bits"),
        ("Zm8=", "outside"),
        ("Zm+8", "outside"),
        ("Zm", "characters"),
    ):
        with pytest.raises(ValueError, match=why):
            b64decode_strict(bad, 2, "x")


def test_versions_signed_by_another_key_need_a_signed_delegation(tmp_path, key):
    folder = _chain(tmp_path, key, versions=2)
    (first, v1), (_, v2) = read_envelopes(folder)[next(iter(read_envelopes(folder)))]
    other = SigningKey.generate()
    document = v2["record"]["document"]
    by_other = other.sign(new_record(v2["record"]["passport_id"], document, v2, "original"))
    report = verify_chain([(first, v1), ("v2", v2), ("v3", by_other)])
    assert not report.ok and "v3: it is signed by key" in report.broken
    assert report.intact is False and report.issuer == key.public_key
    # the same key delegated in a version the issuer signed: accepted, and reported as such
    delegation = key.sign(
        new_record(
            v2["record"]["passport_id"], document, v2, "original", delegates=[other.public_key]
        )
    )
    by_delegate = other.sign(
        new_record(v2["record"]["passport_id"], document, delegation, "original")
    )
    report = verify_chain([(first, v1), ("v2", v2), ("v3", delegation), ("v4", by_delegate)])
    assert report.ok and report.trusted is None
    assert dict(report.signers) == {key.public_key: (1, 2, 3), other.public_key: (4,)}
    # two keys of one trusted issuer (a rotation) may continue each other's chain; two issuers not
    rotated = [(first, v1), ("v2", v2), ("v3", by_other)]
    assert verify_chain(rotated, {key.public_key: "registry", other.public_key: "registry"}).ok
    split = verify_chain(rotated, {key.public_key, other.public_key})
    assert "neither the chain's issuer" in split.broken
    assert split.trusted is True  # the issuer is trusted; the chain is still refused
    # a delegation naming something that is not a key is refused before anything is written
    before = sorted(folder.iterdir())
    many = [SigningKey.generate().public_key for _ in range(65)]
    for bad in (["not a key"], [other.public_key[:-1] + "B"], many):
        with pytest.raises(CritflowError):
            chains.delegate(folder, key, bad)
    assert sorted(folder.iterdir()) == before


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


_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 5.0, 1e-4, 9.99e-5, 1e-7, 1e16, 1e21, 2.0**53, 2.0**53 - 1, 0.1]),
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | _FLOATS
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_canonical_is_rfc8785_byte_for_byte(value):
    """The fast canonical form is exactly the rfc8785 package's (keys beyond U+FFFF, control
    characters, floats of every magnitude, -0.0, whole-number floats included)."""
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:  # lone surrogates: refused by both
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical(value)
        return
    assert canonical(value) == expected


def test_canonical_of_passport_records_is_rfc8785():
    for category in ("ev", "lmt", "industrial"):
        document = sample_battery(category, f"C-{category}")
        record = new_record(document["data"]["unique_identifier"], document, None, "original")
        assert canonical(record) == rfc8785.dumps(record)
    sorted_by_utf16 = {"\U0001f600": 1, "\uff5e": 2, "a": 3}  # code point and UTF-16 orders differ
    assert canonical(sorted_by_utf16) == rfc8785.dumps(sorted_by_utf16)
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical({"n": 2**53})
