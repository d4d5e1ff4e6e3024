"""Passports under attack, offline (issue 18, "Passports offline"): every probe the issue lists.

Each case ends in a clean refusal — a CritflowError in the library, exit code 2 with a message and
no traceback from `critflow passport …` — within a deadline, never a hang. Where a change cannot
be refused because it changes nothing (whitespace between JSON tokens), the test checks that the
accepted file means exactly what was signed.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from critflow.errors import CritflowError
from critflow.passport import chain as chains
from critflow.passport.checkpoint import make_checkpoint
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
from critflow.passport.safeio import MAX_DEPTH, loads_json
from critflow.passport.samples import sample_battery

ROOT = Path(__file__).resolve().parents[2]
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --- helpers shared with the other test_passports*.py files -------------------------------------
@contextlib.contextmanager
def deadline(seconds: float):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def expire(_signum, _frame):
        raise TimeoutError(f"no answer within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cli(capsys, *args: str, seconds: float = 20) -> tuple[int, str, str]:
    """Run `critflow …` in this process (its real entry point); (exit code, stdout, stderr).

    Anything but a CritflowError or a normal exit escapes as an exception and fails the test.
    """
    from critflow.cli import main

    with (
        deadline(seconds),
        mock.patch.object(sys, "argv", ["critflow", *map(str, args)]),
        pytest.raises(SystemExit) as stop,
    ):
        main()
    captured = capsys.readouterr()
    code = stop.value.code if isinstance(stop.value.code, int) else 1
    return code, captured.out, captured.err


def refused(capsys, *args: str, seconds: float = 20) -> str:
    """Run a command that must be refused cleanly; return its combined output."""
    code, out, err = cli(capsys, *args, seconds=seconds)
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert "critflow: " in err and "problem" in err  # the one place that prints CritflowError
    return out + err


def build_chain(folder: Path, key: SigningKey, versions: int = 3, serial: str = "BAT-000001"):
    """A valid chain of ``versions`` versions (state of charge 80, 79, 78 …)."""
    document = sample_battery("ev", serial=serial)
    chains.issue(document, key, folder)
    for step in range(1, versions):
        update = copy.deepcopy(document)
        update["data"]["state_of_charge"] = 80.0 - step
        chains.append(folder, update, key)
    return folder


def write_keys(folder: Path, *names: str) -> dict[str, SigningKey]:
    keys = {}
    for name in names:
        keys[name] = SigningKey.generate()
        keys[name].save(folder / name)
    return keys


def envelopes(folder: Path) -> list[tuple[str, dict]]:
    (versions,) = read_envelopes(folder).values()
    return versions


def store(folder: Path, items: list[dict]) -> None:
    """Replace the chain in ``folder`` by ``items`` (one file per list entry)."""
    for old in folder.glob("*.json"):
        old.unlink()
    for number, envelope in enumerate(items, start=1):
        (folder / f"v{number:04d}.json").write_text(json.dumps(envelope, indent=1))


@pytest.fixture()
def setup(tmp_path):
    keys = write_keys(tmp_path, "issuer", "other", "attacker")
    folder = build_chain(tmp_path / "chains" / "bat", keys["issuer"])
    return tmp_path, keys, folder


# --- trust, identity and authorship --------------------------------------------------------------
def test_without_trust_anchors_verify_refuses_and_names_the_signer(setup, capsys):
    tmp_path, keys, folder = setup
    text = refused(capsys, "passport", "verify", folder)
    assert f"signed by key {keys['issuer'].key_id}, which is not trusted" in text
    assert "no --trusted key was given" in text
    assert "integrity: hashes, signatures, links and signers hold" in text  # identity ≠ trust
    code, out, _ = cli(capsys, "passport", "verify", folder, "--trusted", tmp_path / "issuer.pub")
    assert code == 0 and "3 version(s) verify" in out
    assert f"issuer key {keys['issuer'].key_id} is trusted" in out


def test_chain_re_signed_with_any_key_is_not_trusted(setup, capsys):
    tmp_path, keys, folder = setup
    attacker = keys["attacker"]
    forged, previous = [], None
    for _name, envelope in envelopes(folder):  # same documents, re-chained and re-signed
        record = dict(envelope["record"], previous_hash=previous["hash"] if previous else None)
        record["document"]["data"]["state_of_charge"] = 100.0
        previous = attacker.sign(record)
        forged.append(previous)
    store(folder, forged)
    assert verify_chain(envelopes(folder)).intact  # internally consistent …
    text = refused(capsys, "passport", "verify", folder)  # … but nobody trusts its signer
    assert key_id(attacker.public_key) in text and "not trusted" in text
    text = refused(capsys, "passport", "verify", folder, "--trusted", tmp_path / "issuer.pub")
    assert "NOT trusted (not among the --trusted keys)" in text


def test_second_trusted_key_cannot_append_to_the_first_ones_chain(setup, capsys):
    tmp_path, keys, folder = setup
    versions = envelopes(folder)
    head = versions[-1][1]
    update = copy.deepcopy(head["record"]["document"])
    update["data"]["state_of_charge"] = 5.0
    appended = keys["other"].sign(
        new_record(head["record"]["passport_id"], update, head, "original")
    )
    store(folder, [e for _, e in versions] + [appended])
    trusted = ["--trusted", tmp_path / "issuer.pub", "--trusted", tmp_path / "other.pub"]
    text = refused(capsys, "passport", "verify", folder, *trusted)
    assert "v0004.json: it is signed by key" in text
    assert "neither the chain's issuer" in text and "nor a key the issuer delegated" in text
    # and the library refuses to write such a version in the first place, leaving the folder as it was
    (folder / "v0004.json").unlink()
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(CritflowError, match="may not sign versions"):
        chains.append(folder, update, keys["other"])
    assert sorted(p.name for p in folder.iterdir()) == before


def test_delegation_is_a_signed_field_and_can_be_revoked(setup, capsys):
    tmp_path, keys, folder = setup
    document = envelopes(folder)[-1][1]["record"]["document"]
    code, out, _ = cli(
        capsys, "passport", "delegate", folder, "--key", tmp_path / "issuer.key",
        "--to", tmp_path / "other.pub",
    )  # fmt: skip
    assert code == 0 and key_id(keys["other"].public_key) in out
    assert envelopes(folder)[-1][1]["record"]["delegates"] == [keys["other"].public_key]
    chains.append(folder, document, keys["other"])  # the delegate may sign now
    trusted = ("--trusted", tmp_path / "issuer.pub")
    code, out, _ = cli(capsys, "passport", "verify", folder, *trusted)
    assert code == 0 and "(delegate) version 5" in out and "(issuer) versions 1-4" in out
    # a delegate may not delegate further
    head = envelopes(folder)[-1][1]
    record = new_record(head["record"]["passport_id"], document, head, "original")
    record["delegates"] = [keys["attacker"].public_key]
    (folder / "v0006.json").write_text(json.dumps(keys["other"].sign(record)))
    assert "only the chain's issuer may do" in refused(
        capsys, "passport", "verify", folder, *trusted
    )
    (folder / "v0006.json").unlink()
    # editing the delegation into a version breaks its hash: the field is signed
    v4 = json.loads((folder / "v0004.json").read_text())
    v4["record"]["delegates"].append(keys["attacker"].public_key)
    (folder / "v0004.json").write_text(json.dumps(v4))
    assert "its hash does not match" in refused(capsys, "passport", "verify", folder, *trusted)
    v4["record"]["delegates"].pop()
    (folder / "v0004.json").write_text(json.dumps(v4))
    # revoking: the former delegate cannot sign the next version
    code, *_ = cli(
        capsys, "passport", "delegate", folder, "--key", tmp_path / "issuer.key", "--clear"
    )
    assert code == 0
    with pytest.raises(CritflowError, match="delegates to no other key"):
        chains.append(folder, document, keys["other"])
    # a delegation signed by anyone but the issuer is refused before anything is written
    refused(capsys, "passport", "delegate", folder, "--key", tmp_path / "other.key", "--clear")


def test_dropping_the_last_version_needs_a_checkpoint_to_be_seen(setup, capsys):
    tmp_path, keys, folder = setup
    trusted = ("--trusted", tmp_path / "issuer.pub")
    code, out, _ = cli(
        capsys, "passport", "checkpoint", folder, "--key", tmp_path / "issuer.key",
        "--out", tmp_path / "cp.json",
    )  # fmt: skip
    assert code == 0
    published = json.loads((tmp_path / "cp.json").read_text())["checkpoint"]
    assert published["version"] == 3 and published["head_hash"] == envelopes(folder)[-1][1]["hash"]
    assert published["key_id"] == keys["issuer"].key_id
    code, out, _ = cli(
        capsys, "passport", "verify", folder, *trusted, "--checkpoint", tmp_path / "cp.json"
    )
    assert code == 0 and "the chain reaches it" in out
    (folder / "v0003.json").unlink()
    # the limit the README states: without a checkpoint the shorter chain still verifies …
    code, out, _ = cli(capsys, "passport", "verify", folder, *trusted)
    assert code == 0 and "2 version(s) verify" in out
    # … with the checkpoint the rollback is found
    text = refused(
        capsys, "passport", "verify", folder, *trusted, "--checkpoint", tmp_path / "cp.json"
    )
    assert "the chain ends at version 2" in text and "rollback" in text


def test_checkpoint_attacks(setup, capsys):
    tmp_path, keys, folder = setup
    head = envelopes(folder)[-1][1]
    pid = head["record"]["passport_id"]
    trusted = ("--trusted", tmp_path / "issuer.pub", "--trusted", tmp_path / "other.pub")

    def check(checkpoint: dict, *extra: str) -> str:
        path = tmp_path / "cp.json"
        path.write_text(json.dumps(checkpoint))
        return refused(capsys, "passport", "verify", folder, *trusted, "--checkpoint", path, *extra)

    good = make_checkpoint(keys["issuer"], pid, 3, head["hash"])
    changed = copy.deepcopy(good)
    changed["checkpoint"]["version"] = 2  # hide nothing, claim less: the signature breaks
    assert "signature that does not verify" in check(changed)
    # another trusted issuer cannot vouch for (or against) this chain
    assert "neither the chain's issuer nor its delegate" in check(
        make_checkpoint(keys["other"], pid, 4, head["hash"])
    )
    assert "not among the trusted keys" in check(
        make_checkpoint(keys["attacker"], pid, 3, head["hash"])
    )
    fork = make_checkpoint(keys["issuer"], pid, 3, "sha256:" + "0" * 64)
    assert "the chain forks from the published one" in check(fork)
    old = make_checkpoint(
        keys["issuer"], pid, 3, head["hash"], issued_at="2020-01-01T00:00:00+00:00"
    )
    assert "older than --max-age" in check(old, "--max-age", "7d")
    future = make_checkpoint(
        keys["issuer"], pid, 3, head["hash"], issued_at="2999-01-01T00:00:00+00:00"
    )
    assert "in the future" in check(future)
    absent = make_checkpoint(
        keys["issuer"], "https://id.gs1.org/01/04054123456783/21/GONE", 1, head["hash"]
    )
    assert "the whole chain was withheld" in check(absent)
    assert "checkpoint.version" in check(
        {**good, "checkpoint": {**good["checkpoint"], "version": True}}
    )
    assert "exactly checkpoint and signature" in check({"checkpoint": good["checkpoint"]})
    # a checkpoint without any trusted key is meaningless
    (tmp_path / "cp.json").write_text(json.dumps(good))
    assert "--trusted" in refused(
        capsys, "passport", "verify", folder, "--checkpoint", tmp_path / "cp.json"
    )
    assert "not a duration" in check(good, "--max-age", "a week")


def test_two_checkpoints_naming_different_heads_reveal_a_fork(setup, capsys):
    tmp_path, keys, folder = setup
    head = envelopes(folder)[-1][1]
    pid = head["record"]["passport_id"]
    (tmp_path / "a.json").write_text(
        json.dumps(make_checkpoint(keys["issuer"], pid, 3, head["hash"]))
    )
    (tmp_path / "b.json").write_text(
        json.dumps(make_checkpoint(keys["issuer"], pid, 3, "sha256:" + "1" * 64))
    )
    text = refused(
        capsys, "passport", "verify", folder, "--trusted", tmp_path / "issuer.pub",
        "--checkpoint", tmp_path / "a.json", "--checkpoint", tmp_path / "b.json",
    )  # fmt: skip
    assert "the issuer signed a fork" in text


def test_reorder_duplicate_and_drop_inside_the_chain(setup, capsys):
    tmp_path, _keys, folder = setup
    trusted = ("--trusted", tmp_path / "issuer.pub")
    items = [e for _, e in envelopes(folder)]
    store(folder, [items[0], items[2]])  # a middle version missing
    assert "v0002.json: it is version 3, but version 2 is expected" in refused(
        capsys, "passport", "verify", folder, *trusted
    )
    store(folder, [items[0], items[1], items[1], items[2]])  # a duplicate
    assert "it is a second version 2: the chain forks here" in refused(
        capsys, "passport", "verify", folder, *trusted
    )
    store(folder, [items[1], items[2]])  # the first one dropped
    assert "it is version 2, but version 1 is expected" in refused(
        capsys, "passport", "verify", folder, *trusted
    )
    # file names do not matter, the signed version numbers do: reordering files changes nothing
    store(folder, [items[2], items[0], items[1]])
    code, out, _ = cli(capsys, "passport", "verify", folder, *trusted)
    assert code == 0 and "3 version(s) verify" in out
    # out of order in one list (as the registry hands them over) is named
    report = verify_chain([("a", items[0]), ("b", items[2]), ("c", items[1])])
    assert not report.ok and report.broken.startswith("b: it is version 3, but version 2")


# --- strict encodings -----------------------------------------------------------------------------
def _spellings(text: str, position: int) -> list[str]:
    return [text[:position] + c + text[position + 1 :] for c in ALPHABET if c != text[position]]


def test_every_other_spelling_of_signature_and_key_is_refused(setup):
    """All 63 other base64url characters at every position of the signature and public key.

    A lenient decoder ignores the unused low bits of the last character: 64 signature bytes
    use 2 of its 6 bits (512 = 85 × 6 + 2), so 2**4 - 1 = 15 other characters decode to the same
    bytes; the 32-byte key uses 4 of 6 (256 = 42 × 6 + 4), giving 2**2 - 1 = 3. The strict
    decoder must refuse all of them, and every other spelling too.
    """
    _tmp, _keys, folder = setup
    versions = envelopes(folder)
    target = versions[1][1]
    lenient_same = {"signature": 0, "public_key": 0}
    tried = 0
    signed = canonical(target["record"])
    assert verify_signature(target["public_key"], target["signature"], signed) is None
    for field in ("signature", "public_key"):
        text = target[field]
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        for position in range(len(text)):
            for variant in _spellings(text, position):
                tried += 1
                if base64.urlsafe_b64decode(variant + "=" * (-len(variant) % 4)) == raw:
                    lenient_same[field] += 1
                changed = dict(target, **{field: variant})
                problem = verify_signature(changed["public_key"], changed["signature"], signed)
                assert problem is not None, (field, position, variant)
    assert lenient_same == {"signature": 15, "public_key": 3}
    for field in ("signature", "public_key"):  # and through the chain, for the lenient twins
        text = target[field]
        twin = text[:-1] + ALPHABET[ALPHABET.index(text[-1]) ^ 1]
        report = verify_chain([versions[0], ("v2", dict(target, **{field: twin})), versions[2]])
        assert "not canonical base64url" in report.broken
    assert tried == (86 + 43) * 63
    with pytest.raises(ValueError, match="non-zero unused bits"):
        b64decode_strict(target["signature"][:-1] + "B", 64, "signature")


def test_every_one_byte_change_of_a_signed_version(setup):
    """Each byte of a signed version file changed (its lowest bit flipped), one at a time.

    Every change is refused, or — where it only touches the whitespace between JSON tokens —
    the file still means exactly what was signed (same canonical JSON of the whole envelope).
    """
    _tmp, _keys, folder = setup
    versions = envelopes(folder)
    data = (folder / "v0002.json").read_bytes()
    signed = canonical(versions[1][1])
    accepted = refused_count = 0
    with deadline(60):
        for position in range(len(data)):
            changed = bytearray(data)
            changed[position] ^= 0x01
            try:
                envelope = loads_json(bytes(changed), "v0002.json")
            except CritflowError:
                refused_count += 1
                continue
            report = verify_chain([versions[0], ("v0002.json", envelope)])  # v3 adds nothing
            if report.ok:
                accepted += 1
                assert canonical(envelope) == signed, position
            else:
                refused_count += 1
    assert accepted + refused_count == len(data) > 4000
    assert refused_count >= len(data) - 2 * data.count(b"\n")  # only whitespace can be harmless


# --- malformed chains, documents and keys ----------------------------------------------------------
WRONG_TYPES = [None, True, 1, 1.5, "text", [], {}, [1, 2], {"a": 1}]
RECORD_FIELDS = [
    "passport_id",
    "version",
    "previous_hash",
    "issued_at",
    "status",
    "links",
    "document",
]


@pytest.mark.parametrize("field", [*RECORD_FIELDS, "delegates"])
def test_wrong_json_types_in_a_record_are_named(setup, field):
    _tmp, keys, folder = setup
    versions = envelopes(folder)
    for value in WRONG_TYPES:
        record = copy.deepcopy(versions[1][1]["record"])
        record[field] = value
        # re-signed by the issuer, so only the type can be wrong
        report = verify_chain([versions[0], ("v2", keys["issuer"].sign(record))])
        legal = (
            (field == "status" and value in (None, "text"))
            or (field == "links" and value == [])
            or (field == "document" and isinstance(value, dict))
            or (field == "delegates" and value == [])
        )
        if legal:  # right types: the re-signed version verifies
            assert report.ok, (field, value, report.broken)
            continue
        assert not report.ok, (field, value)
        assert report.broken.startswith("v2: "), report.broken


@pytest.mark.parametrize("field", ["record", "hash", "signature", "public_key"])
def test_wrong_json_types_in_an_envelope_are_named(setup, field):
    _tmp, _keys, folder = setup
    versions = envelopes(folder)
    for value in WRONG_TYPES:
        changed = dict(versions[0][1], **{field: value})
        report = verify_chain([("v1", changed)])
        assert not report.ok and report.broken.startswith("v1: ")
    extra = dict(versions[0][1], comment="unsigned text smuggled next to the record")
    assert "exactly record, hash, signature, public_key" in verify_chain([("v1", extra)]).broken


HOSTILE_FILES = {
    "not UTF-8": b'{"record": "\xff\xfe"}',
    "UTF-16": json.dumps({"record": 1}).encode("utf-16"),
    "deep arrays": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * (MAX_DEPTH + 5) + b"1" + b"}" * (MAX_DEPTH + 5),
    "NaN": b'{"record": NaN}',
    "Infinity": b'{"record": {"version": Infinity}}',
    "huge integer": b'{"record": {"version": ' + b"9" * 5000 + b"}}",
    "integer beyond 2**53": b'{"record": {"version": 9007199254740993}}',
    "lone surrogate": b'{"record": "\\ud800"}',
    "duplicate key": b'{"record": 1, "record": 2}',
    "byte-order mark": b"\xef\xbb\xbf{}",
    "empty": b"",
    "not JSON": b"record: yes",
    "truncated": b'{"record": {"version": 1',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_version_files_exit_2(setup, capsys, name):
    tmp_path, _keys, folder = setup
    bad = folder / "v0002.json"
    bad.write_bytes(HOSTILE_FILES[name])
    text = refused(capsys, "passport", "verify", folder, "--trusted", tmp_path / "issuer.pub")
    assert "v0002.json" in text
    # alone, the file is refused at once, with its reason
    assert "v0002.json" in refused(capsys, "passport", "verify", bad)


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_documents_exit_2(tmp_path, capsys, name):
    path = tmp_path / "document.json"
    path.write_bytes(HOSTILE_FILES[name])
    for command in ("validate", "view"):
        assert "document.json" in refused(capsys, "passport", command, path)


WRONG_SHAPES = {
    "data is a list": {"kind": "battery", "category": "ev", "data": [1]},
    "data is text": {"kind": "battery", "category": "ev", "data": "450 kg"},
    "kind is a list": {"kind": ["battery"], "category": "ev", "data": {}},
    "category is a mapping": {"kind": "battery", "category": {"ev": 1}, "data": {}},
    "identifier is a number": {
        "kind": "battery",
        "category": "ev",
        "data": {"unique_identifier": 7},
    },
    "lot of wrong types": {"kind": "lot", "lot_id": 1, "mass": "12 t", "composition": []},
    "a list": [1, 2],
    "a number": 3,
    "version with a list record": {"record": [1], "signature": "x"},
    "version with a list document": {"record": {"document": [1]}, "signature": "x"},
}


@pytest.mark.parametrize("command", ["validate", "view", "sign", "qr", "export"])
@pytest.mark.parametrize("name", sorted(WRONG_SHAPES))
def test_documents_of_the_wrong_shape_exit_2(tmp_path, capsys, name, command):
    path = tmp_path / "document.json"
    path.write_text(json.dumps(WRONG_SHAPES[name]))
    args: list = ["passport", command, path]
    if command == "sign":
        write_keys(tmp_path, "k")
        args += ["--key", tmp_path / "k.key", "--chain", tmp_path / "chain"]
    elif command in ("qr", "export"):
        args += ["--out", tmp_path / ("qr.svg" if command == "qr" else "out.json")]
    document = WRONG_SHAPES[name]
    if (  # `view` shows drafts too: it needs a kind and a mapping of data, not a valid passport
        command == "view"
        and isinstance(document, dict)
        and document.get("kind") in ("battery", "lot")
        and isinstance(document.get("data", {}), dict)
    ):
        code, out, err = cli(capsys, *args)
        assert code == 0 and "Traceback" not in out + err
        return
    refused(capsys, *args)
    assert not (tmp_path / "chain").exists()


HOSTILE_YAML = {
    "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)
    ),
    "deep flow": "[" * 10_000 + "]" * 10_000,
    "deep block": "".join("  " * i + "a:\n" for i in range(200)) + "  " * 200 + "1\n",
    "binary tag": "kind: !!binary aGVsbG8=\n",
    "python tag": "kind: !!python/object/apply:os.system ['true']\n",
    "set": "kind: !!set {a, b}\n",
    "integer key": "1: battery\n",
    "nan": "kind: .nan\n",
    "not UTF-8": b"kind: \xff\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
def test_hostile_yaml_documents_exit_2(tmp_path, capsys, name):
    text = HOSTILE_YAML[name]
    path = tmp_path / "document.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = refused(capsys, "passport", "validate", path, seconds=10)
    assert "document.yaml" in out


def test_yaml_dates_stay_text_and_sign(tmp_path, capsys):
    # YAML 1.1 would turn 2027-03 style dates into date objects that JSON cannot carry
    document = sample_battery("ev")
    import yaml

    text = yaml.safe_dump(document).replace(
        "manufacturing_date: 2027-03", "manufacturing_date: 2027-03-01"
    )
    (tmp_path / "doc.yaml").write_text(text)
    keys = write_keys(tmp_path, "k")
    out = refused(capsys, "passport", "sign", tmp_path / "doc.yaml", "--key", tmp_path / "k.key",
                  "--chain", tmp_path / "c")  # fmt: skip
    assert "is not a month" in out and "(got '2027-03-01')" in out  # text, not a date object
    assert not (tmp_path / "c").exists()
    assert keys


@pytest.mark.parametrize("option", ["--key", "--trusted", "--checkpoint", "path"])
def test_dev_zero_is_refused_by_size(setup, capsys, option):
    tmp_path, _keys, folder = setup
    document = ROOT / "examples" / "passports" / "ev_battery_passport.json"
    if option == "--key":
        args = ("sign", document, "--key", "/dev/zero", "--chain", folder)
    elif option == "--trusted":
        args = ("verify", folder, "--trusted", "/dev/zero")
    elif option == "--checkpoint":
        args = ("verify", folder, "--trusted", tmp_path / "issuer.pub", "--checkpoint", "/dev/zero")
    else:
        args = ("verify", "/dev/zero")
    text = refused(capsys, "passport", *args, seconds=10)
    assert "/dev/zero" in text and "larger than" in text


def test_fifo_in_a_folder_does_not_hang(setup, capsys):
    tmp_path, _keys, folder = setup
    os.mkfifo(folder / "v0009.json")
    text = refused(
        capsys, "passport", "verify", folder, "--trusted", tmp_path / "issuer.pub", seconds=10
    )
    assert "v0009.json" in text and "not a regular file" in text


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a key", "not a readable Ed25519 private key"),
        (b"\x00\xff" * 50, "not a readable Ed25519 private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a readable"),
    ],
)
def test_broken_private_keys(setup, capsys, content, message):
    tmp_path, _keys, folder = setup
    (tmp_path / "bad.key").write_bytes(content)
    document = ROOT / "examples" / "passports" / "ev_battery_passport.json"
    before = sorted(folder.iterdir())
    text = refused(
        capsys, "passport", "sign", document, "--key", tmp_path / "bad.key", "--chain", folder
    )
    assert message in text
    assert sorted(folder.iterdir()) == before


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "holds no public key"),
        (b"# only a comment\n", "holds no public key"),
        (b"AAAA\n", "line 1"),
        (b"\xff\xfe", "not a text file"),
        (b"-----BEGIN PRIVATE KEY-----\n", "is a private key"),
    ],
)
def test_broken_trust_files(setup, capsys, content, message):
    tmp_path, _keys, folder = setup
    (tmp_path / "bad.pub").write_bytes(content)
    assert message in refused(
        capsys, "passport", "verify", folder, "--trusted", tmp_path / "bad.pub"
    )


def test_public_key_with_unused_bits_set_is_not_a_trust_anchor(setup, capsys):
    tmp_path, keys, folder = setup
    text = keys["issuer"].public_key
    last = ALPHABET.index(text[-1])
    assert last % 4 == 0  # 256 bits = 42 × 6 + 4: the last character's two low bits are unused
    (tmp_path / "odd.pub").write_text(text[:-1] + ALPHABET[last | 1] + "\n")
    assert "not canonical base64url" in refused(
        capsys, "passport", "verify", folder, "--trusted", tmp_path / "odd.pub"
    )


def test_signed_version_with_a_non_object_record_as_document(tmp_path, capsys):
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"record": [1, 2], "signature": "x"}))
    assert "does not hold a passport document" in refused(capsys, "passport", "view", path)


def test_the_installed_command_exits_2_without_traceback(setup):
    """The same refusals through a real `critflow` process (exit code and stderr as users see them)."""
    tmp_path, _keys, folder = setup
    environment = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    document = tmp_path / "x.json"
    document.write_text(json.dumps(sample_battery("ev", serial="X1")))
    args = ["passport", "sign", str(document), "--key", "/dev/zero", "--chain", str(folder)]
    result = subprocess.run(
        [sys.executable, "-m", "critflow", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and "/dev/zero: is larger than" in result.stderr


def test_terminal_escape_codes_in_files_are_not_printed(tmp_path, capsys):
    key = SigningKey.generate()
    lot = {"kind": "lot", "lot_id": "LOT\x1b[2J\x1b[31m-1", "product": "black mass"}
    chains.issue(lot, key, tmp_path / "lot")
    (tmp_path / "lot" / "v0002.json").write_text('{"\\u001b[2J": 1, "\\u001b[2J": 2}')
    text = refused(capsys, "passport", "verify", tmp_path / "lot")
    assert "\x1b" not in text and "LOT\\x1b[2J" in text
