"""Bulk battery passports: generate, validate, sign and export; passports per second per step.

Generates N synthetic EV passports (each with its own serial and state of charge), validates
them against the data-point model (pydantic, generated from the data file), signs each as the
first version of its chain (RFC 8785 canonical JSON, SHA-256, Ed25519), and writes the IDTA 02035
AAS JSON with critflow's direct writer. The same documents go through plain basyx-python-sdk
(object construction + its JSON serialisation) for comparison; basyx runs on a subset
(--basyx, default 2,000) because it is much slower, and the rate is compared per passport.
Target: validation + signing at least 2,000 passports/s on the 2-core machine.

    python benchmarks/passport_bulk.py [--count 100000] [--basyx 2000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from critflow.passport.aas import aas_json_text, basyx_objects
from critflow.passport.battery import validate_battery
from critflow.passport.integrity import SigningKey, new_record
from critflow.passport.samples import sample_battery


def timed(label: str, count: int, function):
    start = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {seconds:8.2f} s  {count / seconds:10,.0f} passports/s")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--basyx", type=int, default=2_000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import header

    header(
        "battery passports in bulk (one run; no peer)",
        ["cryptography", "rfc8785", "basyx-python-sdk"],
    )
    n = args.count
    key = SigningKey.generate()
    print(f"{n:,} EV battery passports\n")
    documents, _ = timed(
        "generate",
        n,
        lambda: [sample_battery("ev", f"S{i:08d}", soc=float(i % 100)) for i in range(n)],
    )

    def validate_all():
        for document in documents:
            validate_battery(document)

    _, t_validate = timed("validate (71 data points, category rules)", n, validate_all)
    issued_at = "2027-02-18T00:00:00+00:00"

    def sign_all():
        for d in documents:
            record = new_record(
                d["data"]["unique_identifier"], d, None, "original", None, issued_at
            )
            key.sign(record)

    _, t_sign = timed("sign (RFC 8785, SHA-256, Ed25519)", n, sign_all)
    both = t_validate + t_sign
    print(f"{'validate + sign':<44} {both:8.2f} s  {n / both:10,.0f} passports/s (target ≥ 2,000)")
    folder = Path(tempfile.mkdtemp(prefix="critflow-aas-"))

    def export_all(chunk: int = 2_000):
        for start in range(0, n, chunk):
            text = aas_json_text(documents[start : start + chunk])
            (folder / f"passports-{start // chunk:04d}.json").write_text(text, encoding="utf-8")

    _, t_ours = timed("AAS JSON, critflow direct writer (to files)", n, export_all)
    files = list(folder.iterdir())
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"{'':<44} {size:8.0f} MB in {len(files)} files (deleted after the run)")
    shutil.rmtree(folder)
    subset = documents[: args.basyx]
    environment = json.loads(aas_json_text(subset))  # the same content, prepared outside the timing
    m = len(subset)
    from basyx.aas.adapter.json import object_store_to_json

    _, t_basyx = timed(
        f"AAS JSON, basyx-python-sdk ({m:,}, in memory)",
        m,
        lambda: object_store_to_json(basyx_objects(subset, environment)),
    )
    print(
        f"\ncritflow's AAS writer is {(t_basyx / m) / (t_ours / n):.0f}x faster per passport "
        "than building and serialising the same shells with basyx-python-sdk"
    )


if __name__ == "__main__":
    main()
