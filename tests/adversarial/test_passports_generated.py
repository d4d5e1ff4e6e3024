"""Generated attacks on passport documents and signed chains (hypothesis).

Properties, for every generated input:
- a passport document, however malformed, is validated, viewed and signed or refused with a
  CritflowError — nothing else escapes;
- a mutated version file is refused, or means exactly what was signed;
- a chain rearranged by any mix of reorder, drop, duplicate, re-sign with an untrusted key,
  append with a second trusted key and splice from a fork verifies only if it is an unchanged
  prefix of the original; with the issuer's checkpoint, only if it is the whole original;
- `critflow passport verify` exits 0 exactly when the files hold the original chain, otherwise 2.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from critflow.errors import CritflowError
from critflow.passport import chain as chains
from critflow.passport.checkpoint import Checkpoint, compare, make_checkpoint, verify_checkpoint
from critflow.passport.integrity import SigningKey, canonical, new_record, verify_chain
from critflow.passport.lot import validate_document
from critflow.passport.safeio import loads_json
from critflow.passport.samples import sample_battery
from critflow.passport.views import view
from tests.adversarial.test_passports import build_chain, cli, deadline, envelopes, store

FAST = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)

# --- strategies --------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "450 kg", "1e999 kWh", "kg", "2027-13", "ev", "battery", "lot", "NaN"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def _paths(value, prefix=()):
    """Every path (tuple of keys/indices) into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _mutate(value, path, action, new):
    """A copy of ``value`` with the node at ``path`` replaced, deleted, or given a new child."""
    value = copy.deepcopy(value)
    if not path:
        return new if action != "insert" or not isinstance(value, dict) else {**value, "x": new}
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = new
    elif action == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last]["extra"] = new
    elif isinstance(parent[last], list):
        parent[last].append(new)
    else:
        parent[last] = [parent[last], new]
    return value


@st.composite
def passport_documents(draw):
    """Valid battery and lot documents with one node replaced, deleted or extended — or junk."""
    base = draw(
        st.sampled_from(
            [
                sample_battery("ev"),
                sample_battery("lmt", serial="L-1"),
                sample_battery("industrial", serial="I-1"),
                {
                    "kind": "lot",
                    "lot_id": "LOT-1",
                    "product": "black mass",
                    "mass": {"value": 12.5, "unit": "t"},
                    "composition": {"Co": {"mass_fraction": 0.1, "sd": 0.01}},
                    "origin": {"process": "shredder"},
                    "recycled_content": {"pre_consumer": 0.2, "post_consumer": 0.5},
                    "carbon_footprint": {"status": "pending"},
                },
            ]
        )
    )
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(base))
        top = [p for p in paths if len(p) == 1]  # kind, category, data: half of the draws
        path = draw(st.sampled_from(top if top and draw(st.booleans()) else paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "insert"]))
        if action == "delete" and not path:
            continue
        base = _mutate(base, path, action, draw(json_values))
    return base


# --- documents -----------------------------------------------------------------------------------
@FAST
@given(document=passport_documents())
def test_malformed_documents_are_refused_cleanly(document):
    with deadline(10):
        try:
            validate_document(document, where="doc")
        except CritflowError as exc:
            assert all(p.where.startswith("doc") for p in exc.problems)
        if isinstance(document, dict) and isinstance(document.get("data", {}), dict):
            view(document, "public")  # the library view takes a mapping (the command checks)
        with contextlib.suppress(CritflowError):
            SigningKey.generate().sign(new_record("p", document, None, "original"))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    document=passport_documents(),
    command=st.sampled_from(["validate", "view", "sign", "qr", "export"]),
)
def test_malformed_document_files_through_the_command(tmp_path_factory, capsys, document, command):
    folder = tmp_path_factory.mktemp("doc")
    path = folder / "document.json"
    path.write_text(json.dumps(document, allow_nan=True), encoding="utf-8")
    args = ["passport", command, path]
    if command == "sign":
        SigningKey.generate().save(folder / "k")
        args += ["--key", folder / "k.key", "--chain", folder / "chain"]
    elif command in ("qr", "export"):
        args += ["--out", folder / ("qr.svg" if command == "qr" else "out.json")]
    code, out, err = cli(capsys, *args, seconds=10)
    assert code in (0, 2) and "Traceback" not in out + err
    if code == 2:
        assert "problem" in err
        assert not (folder / "chain").exists()  # a refused signing wrote nothing


# --- signed versions -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A 4-version chain, its issuer, a second trusted issuer, an attacker and a fork."""
    root = tmp_path_factory.mktemp("chains")
    issuer, second, attacker = (SigningKey.generate() for _ in range(3))
    folder = build_chain(root / "bat", issuer, versions=4)
    fork_folder = root / "fork"
    shutil.copytree(folder, fork_folder)
    (fork_folder / "v0004.json").unlink()
    (fork_folder / "v0003.json").unlink()
    document = envelopes(fork_folder)[-1][1]["record"]["document"]
    document["data"]["state_of_charge"] = 12.0
    chains.append(fork_folder, document, issuer)
    chains.append(fork_folder, document, issuer)
    for name, key in (("issuer", issuer), ("second", second)):
        key.save(root / name)
    head = envelopes(folder)[-1][1]
    checkpoint = make_checkpoint(issuer, head["record"]["passport_id"], 4, head["hash"])
    (root / "cp.json").write_text(json.dumps(checkpoint))
    return {
        "root": root,
        "versions": [e for _, e in envelopes(folder)],
        "fork": [e for _, e in envelopes(fork_folder)],
        "issuer": issuer,
        "second": second,
        "attacker": attacker,
        "checkpoint": verify_checkpoint(checkpoint, {issuer.public_key}, "cp.json"),
        "bytes": (folder / "v0003.json").read_bytes(),
    }


@FAST
@given(data=st.data())
def test_structural_mutations_of_a_version_are_refused(original, data):
    versions = original["versions"]
    index = data.draw(st.integers(0, len(versions) - 1))
    target = versions[index]
    path = data.draw(st.sampled_from(list(_paths(target))))
    action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
    assume(path or action != "delete")
    changed = _mutate(target, path, action, data.draw(json_values))
    assume(changed != target)
    chain = [(f"v{i + 1}", e) for i, e in enumerate(versions)]
    chain[index] = (f"v{index + 1}", changed)
    report = verify_chain(chain, {original["issuer"].public_key})
    assert not report.ok
    assert report.broken.startswith(f"v{index + 1}: "), report.broken


@FAST
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.sampled_from(["flip", "set", "insert", "delete"]),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_byte_mutations_of_a_version_file(original, edits):
    data = bytearray(original["bytes"])
    for position, action, value in edits:
        position %= len(data) + 1
        if action == "insert":
            data[position:position] = bytes([value])
        elif position == len(data):
            continue
        elif action == "flip":
            data[position] ^= 1 << (value % 8)
        elif action == "set":
            data[position] = value
        else:
            del data[position]
    versions = original["versions"]
    try:
        envelope = loads_json(bytes(data), "v0003.json")
    except CritflowError:
        return
    chain = [("v1", versions[0]), ("v2", versions[1]), ("v3", envelope), ("v4", versions[3])]
    report = verify_chain(chain, {original["issuer"].public_key})
    if report.ok:
        assert canonical(envelope) == canonical(versions[2])  # only whitespace changed


# --- whole chains --------------------------------------------------------------------------------
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("reorder"), st.permutations(range(8))),
        st.tuples(st.just("drop"), st.integers(0, 7)),
        st.tuples(st.just("duplicate"), st.integers(0, 7)),
        st.tuples(st.just("re-sign"), st.integers(0, 7)),
        st.tuples(st.just("re-sign and re-chain"), st.integers(0, 7)),
        st.tuples(st.just("append by second issuer"), st.just(0)),
        st.tuples(st.just("append by attacker"), st.just(0)),
        st.tuples(st.just("splice from fork"), st.integers(0, 7)),
    ),
    min_size=1,
    max_size=4,
)


def _apply(original, operations) -> list[dict]:
    chain = list(original["versions"])
    for name, argument in operations:
        if not chain:
            break
        if name == "reorder":
            order = [i for i in argument if i < len(chain)]
            chain = [chain[i] for i in order]
        elif name == "drop":
            chain.pop(argument % len(chain))
        elif name == "duplicate":
            index = argument % len(chain)
            chain.insert(index, chain[index])
        elif name.startswith("re-sign"):
            index = argument % len(chain)
            record = copy.deepcopy(chain[index]["record"])
            chain[index] = original["attacker"].sign(record)
            if (
                name == "re-sign and re-chain"
            ):  # fix every later link, signing with the attacker's key
                for later in range(index + 1, len(chain)):
                    record = copy.deepcopy(chain[later]["record"])
                    record["previous_hash"] = chain[later - 1]["hash"]
                    chain[later] = original["attacker"].sign(record)
        elif name.startswith("append"):
            key = original["second"] if "second" in name else original["attacker"]
            head = chain[-1]
            document = copy.deepcopy(head["record"]["document"])
            document["data"]["state_of_charge"] = 1.0
            record = new_record(
                head["record"]["passport_id"], document, head, head["record"]["status"]
            )
            chain.append(key.sign(record))
        else:  # a version from the issuer's own fork
            index = argument % len(original["fork"])
            chain[min(index, len(chain) - 1)] = original["fork"][index]
    return chain


def _is_prefix(chain, versions) -> bool:
    return 0 < len(chain) <= len(versions) and all(
        a is b or a == b for a, b in zip(chain, versions, strict=False)
    )


@FAST
@given(operations=OPERATIONS)
def test_rearranged_chains_verify_only_as_the_original(original, operations):
    chain = _apply(original, operations)
    assume(chain)
    versions = original["versions"]
    trusted = {original["issuer"].public_key: "issuer", original["second"].public_key: "second"}
    report = verify_chain([(f"#{i}", e) for i, e in enumerate(chain)], trusted)
    if report.ok:
        # an unchanged prefix of the original, or of the issuer's own fork (both signed by it)
        assert _is_prefix(chain, versions) or _is_prefix(chain, original["fork"]), operations
        finding = compare(original["checkpoint"], report, trusted)
        assert (finding is None) == (chain == versions), (operations, finding)
    else:
        assert not _is_prefix(chain, versions) and not _is_prefix(chain, original["fork"])


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(operations=OPERATIONS)
def test_rearranged_chains_through_the_command(original, tmp_path_factory, capsys, operations):
    chain = _apply(original, operations)
    assume(chain)
    folder = tmp_path_factory.mktemp("mutated")
    store(folder, chain)
    root: Path = original["root"]
    code, out, err = cli(
        capsys, "passport", "verify", folder, "--trusted", root / "issuer.pub",
        "--trusted", root / "second.pub", "--checkpoint", root / "cp.json",
    )  # fmt: skip
    assert "Traceback" not in out + err
    same_files = sorted(map(canonical, chain)) == sorted(map(canonical, original["versions"]))
    assert code == (0 if same_files else 2), (operations, out, err)


def test_checkpoint_type_separates_it_from_versions(original):
    """The same key signs versions and checkpoints; neither can pass for the other."""
    version = original["versions"][0]
    as_checkpoint = {"checkpoint": version["record"], "signature": version["signature"]}
    with pytest.raises(CritflowError, match="is not a passport checkpoint"):
        verify_checkpoint(as_checkpoint, {original["issuer"].public_key}, "x")
    published: Checkpoint = original["checkpoint"]
    body = {
        "type": "critflow-passport-checkpoint/1",
        "passport_id": published.passport_id,
        "version": published.version,
        "head_hash": published.head_hash,
        "issued_at": published.issued_at.isoformat(),
        "key_id": original["issuer"].key_id,
    }
    forged = {"record": body, "hash": "sha256:" + "0" * 64, "signature": "A" * 86,
              "public_key": original["issuer"].public_key}  # fmt: skip
    assert not verify_chain([("v1", forged)]).ok
