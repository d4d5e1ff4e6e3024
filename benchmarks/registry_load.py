"""Load test of the passport registry: a real server on loopback, concurrent clients, N passports.

For each database (SQLite file, PostgreSQL from --postgres, CRITFLOW_TEST_DATABASE_URL or
.ci/postgres): fill the registry with N signed passports (bulk insert of real signed versions,
not via HTTP; kept in --folder and reused by the next run with the same N), start ``uvicorn``
with --workers processes, then drive it with --clients concurrent connections: public reads,
authorised (legitimate-interest, audited) reads, creates, version appends. The load generator is
wrk when it is installed (C: it leaves the two cores to the server far more than Python clients
do; --driver aiohttp for this script's own clients), aiohttp for appends (each needs its
passport's ETag for If-Match).
The phases are interleaved over --rounds rounds of --seconds each (after one warm-up second per
phase), and each phase's requests/s and p50/p99 latency are printed as min / median / max over
the rounds, with the server's CPU time (user + system of the uvicorn processes, from /proc) per
answered request, which depends less on other work on the machine. It prints the machine, the
versions, the databases' durability settings (a PostgreSQL with fsync=off acknowledges commits
that a power loss would undo) and the load average before and after, and the query plans of a
lookup and of a listing page (indexed).

Targets (2-core machine, 1,000,000 passports): >= 5,000 public reads/s, >= 1,000 authorised
reads/s and >= 500 creates/s with p99 < 50 ms. The load generator shares the cores with the
server, so the figures are a floor.

    python benchmarks/registry_load.py [--passports 1000000] [--databases sqlite postgresql]
        [--seconds 10] [--rounds 3] [--clients 32] [--workers 2] [--folder DIR]
        [--postgres postgresql+psycopg://user@host:port/db] [--driver auto|wrk|aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, text

from critflow.passport.integrity import new_record
from critflow.passport.samples import sample_battery
from critflow.server import organisations
from critflow.server.auth import create_key
from critflow.server.database import make_engine, session_factory, upgrade
from critflow.server.disclosure import public_view_text
from critflow.server.models import Passport, PassportVersion
from critflow.server.service import passport_key
from critflow.server.signing import attach, ensure_registry_key, load_registry_key

GTIN = "04054123456783"


def _rows(job: tuple[Path, int, int]) -> tuple[list[dict], list[dict]]:
    """Signed passports ``start``..``stop`` (rows of passports and passport_versions)."""
    key_file, start, stop = job
    signer = load_registry_key(key_file)
    template = sample_battery("ev", "X")
    passports, versions = [], []
    for i in range(start, stop):
        serial = f"L{i:09d}"
        document = json.loads(json.dumps(template))
        identifier = f"https://id.gs1.org/01/{GTIN}/21/{serial}"
        document["data"]["unique_identifier"] = identifier
        document["data"]["state_of_charge"] = float(i % 100)
        envelope = signer.sign(
            new_record(identifier, document, None, "original", None, "2027-02-18T00:00:00+00:00")
        )
        key = passport_key(identifier)
        passports.append(
            {
                "id": i + 1,
                "key": key,
                "passport_id": identifier,
                "kind": "battery",
                "category": "ev",
                "gtin": GTIN,
                "serial": serial,
                "product": "NMC811 / graphite",
                "status": "original",
                "operator": "Example Cells NV",
                "version": 1,
                "head_hash": envelope["hash"],
                "public_view": public_view_text(key, envelope),
                "closed": False,
            }
        )
        versions.append(
            {
                "passport_pk": i + 1,
                "version": 1,
                "hash": envelope["hash"],
                "envelope": json.dumps(envelope),
            }
        )
    return passports, versions


def fill(url: str, key_file: Path, count: int, chunk: int = 5_000) -> tuple[str, str]:
    """Insert ``count`` signed EV passports (signed on every core); return an issuer key and a
    legitimate-interest key."""
    engine = make_engine(url)
    upgrade(engine)
    signer, _ = ensure_registry_key(key_file)
    attach(engine, signer)
    with session_factory(engine)() as session:
        # the GS1 Company Prefix of GTIN 04054123456783 and the samples' operator identifier
        organisations.register(session, "Example Cells NV", ["4054123"], ["BE0123456789"])
        issuer = create_key(session, "Example Cells NV", ["issuer"], True, None)
        reader = create_key(session, "Recycler BV", ["legitimate_interest"], False, "recycling")
    started = time.perf_counter()
    jobs = [(key_file, s, min(s + chunk, count)) for s in range(0, count, chunk)]
    with multiprocessing.get_context("spawn").Pool(os.cpu_count()) as pool:
        for passports, versions in pool.imap(_rows, jobs):
            with engine.begin() as connection:
                connection.execute(insert(Passport), passports)
                connection.execute(insert(PassportVersion), versions)
            done = passports[-1]["id"]
            rate = done / (time.perf_counter() - started)
            print(f"\r  filled {done:,} / {count:,} ({rate:,.0f}/s)", end="", flush=True)
    if engine.url.get_backend_name() == "postgresql":
        with engine.begin() as connection:
            connection.execute(
                text("SELECT setval('passports_id_seq', (SELECT max(id) FROM passports))")
            )
            connection.execute(
                text(
                    "SELECT setval('passport_versions_id_seq', (SELECT max(id) FROM passport_versions))"
                )
            )
            connection.execute(text("ANALYZE"))
    print()
    plans(engine)
    engine.dispose()
    return issuer, reader


def plans(engine) -> None:
    """Show that a lookup and a filtered page use indexes."""
    key = passport_key(f"https://id.gs1.org/01/{GTIN}/21/L000000042")
    explain = "EXPLAIN QUERY PLAN " if engine.url.get_backend_name() == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        for label, query in (
            ("lookup by key", f"SELECT public_view FROM passports WHERE key = '{key}'"),
            (
                "page by product",
                "SELECT id, key FROM passports WHERE product = 'NMC811 / graphite' AND id > 500000 "
                "ORDER BY id LIMIT 51",
            ),
        ):
            rows = connection.execute(text(explain + query)).all()
            print(f"  plan, {label}: " + " | ".join(str(r[-1]) for r in rows))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, key_file: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "CRITFLOW_DATABASE_URL": url, "CRITFLOW_REGISTRY_KEY": str(key_file)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "critflow.server.app:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import urllib.request

    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


async def drive(
    base: str, phase: str, seconds: float, clients: int, count: int, keys: dict
) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    errors: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    template = sample_battery("ev", "X")
    created = 0
    nonce = f"{random.randrange(16**4):04x}"

    async def one(session: aiohttp.ClientSession, worker: int) -> None:
        nonlocal created
        counter = 0
        etags: dict[str, str] = {}
        while time.perf_counter() < deadline:
            counter += 1
            i = random.randrange(count)
            key = passport_key(f"https://id.gs1.org/01/{GTIN}/21/L{i:09d}")
            started = time.perf_counter()
            if phase == "public reads":
                response = await session.get(f"{base}/api/passports/{key}")
            elif phase == "authorised reads":
                response = await session.get(
                    f"{base}/api/passports/{key}", headers={"X-API-Key": keys["reader"]}
                )
            elif phase == "creates":
                document = json.loads(json.dumps(template))
                document["data"]["unique_identifier"] = (
                    f"https://id.gs1.org/01/{GTIN}/21/N{nonce}{worker:03d}-{counter:07d}"
                )
                response = await session.post(
                    f"{base}/api/passports", json=document, headers={"X-API-Key": keys["issuer"]}
                )
            else:  # appends: each client works on its own passports
                j = (worker * 1000 + counter % 1000) % count
                key = passport_key(f"https://id.gs1.org/01/{GTIN}/21/L{j:09d}")
                if key not in etags:  # the issuer's ETag is the version hash (If-Match)
                    got = await session.get(
                        f"{base}/api/passports/{key}", headers={"X-API-Key": keys["issuer"]}
                    )
                    etags[key] = got.headers["ETag"]
                    await got.read()
                document = json.loads(json.dumps(template))
                document["data"]["unique_identifier"] = f"https://id.gs1.org/01/{GTIN}/21/L{j:09d}"
                document["data"]["state_of_charge"] = float(counter % 100)
                started = time.perf_counter()
                response = await session.put(
                    f"{base}/api/passports/{key}",
                    json=document,
                    headers={"X-API-Key": keys["issuer"], "If-Match": etags[key]},
                )
                if response.status == 200:
                    etags[key] = response.headers["ETag"]
            await response.read()
            latencies.append(time.perf_counter() - started)
            if response.status >= 400:
                errors[response.status] = errors.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, w) for w in range(clients)))
    if errors:
        shown = ", ".join(f"{n} × {status}" for status, n in sorted(errors.items()))
        print(f"  (error responses in {phase}: {shown})")
    return latencies


WRK_READS = """
local paths = {}
for line in io.lines(%(paths)s) do paths[#paths + 1] = line end
local headers = %(headers)s
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request() return wrk.format("GET", paths[math.random(#paths)], headers) end
"""

WRK_CREATES = """
local template = %(template)s
local headers = %(headers)s
local next_thread = 1
function setup(thread) thread:set("tid", next_thread); next_thread = next_thread + 1 end
local n = 0
function request()
  n = n + 1
  local serial = string.format("N%(nonce)s%%03d-%%07d", tid, n)
  local body = template:gsub("__SERIAL__", serial)
  return wrk.format("POST", "/api/passports", headers, body)
end
"""


def wrk_drive(
    base: str, phase: str, seconds: float, clients: int, count: int, keys: dict, work: Path
) -> tuple[int, float, float, int]:
    """One phase driven by wrk (C, two threads; a load generator that takes far less of the two
    cores than Python's): (answered requests, p50 ms, p99 ms, error responses)."""
    if phase in ("public reads", "authorised reads"):
        paths = work / f"paths-{count}.txt"
        if not paths.exists():
            rng = random.Random(1)
            paths.write_text(
                "".join(
                    "/api/passports/"
                    + passport_key(f"https://id.gs1.org/01/{GTIN}/21/L{rng.randrange(count):09d}")
                    + "\n"
                    for _ in range(100_000)
                )
            )
        headers = {"X-API-Key": keys["reader"]} if phase == "authorised reads" else {}
        script = WRK_READS % {"paths": _lua(str(paths)), "headers": _lua_table(headers)}
    else:
        document = sample_battery("ev", "X")
        document["data"]["unique_identifier"] = f"https://id.gs1.org/01/{GTIN}/21/__SERIAL__"
        headers = {"X-API-Key": keys["issuer"], "Content-Type": "application/json"}
        script = WRK_CREATES % {
            "template": _lua(json.dumps(document)),
            "headers": _lua_table(headers),
            "nonce": f"{random.randrange(16**4):04x}",
        }
    lua = work / "phase.lua"
    lua.write_text(script)
    command = ["wrk", "-t2", f"-c{clients}", f"-d{seconds:g}s", "--latency", "-s", str(lua), base]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return _wrk_numbers(text)


def _wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    text = done.stdout or done.stderr
    return text.split()[1] if text.startswith("wrk ") else "(version unknown)"


def _lua(text: str) -> str:
    """A Lua long string holding ``text`` as it is."""
    level = "=" * 4
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def _lua_table(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[ {_lua(k)} ] = {_lua(v)}" for k, v in headers.items()) + "}"


def _wrk_numbers(text: str) -> tuple[int, float, float, int]:
    """(requests, p50 ms, p99 ms, non-2xx responses) from wrk's --latency print."""
    import re

    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M).groups()
        return float(value) * scale[unit]

    requests = int(re.search(r"(\d+) requests in", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    failed = int(bad.group(1)) if bad else 0
    if errors:
        failed += sum(int(g) for g in errors.groups())
    return requests, percentile("50"), percentile("99"), failed


def measure(
    latencies: list[float], seconds: float, cpu: float | None
) -> tuple[float, float, float, float]:
    """(requests/s, p50 ms, p99 ms, server CPU ms per request) of one phase of one round;
    ``cpu`` is the server's CPU seconds over the phase (NaN when unknown)."""
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1e3
    p99 = ordered[int(0.99 * (len(ordered) - 1))] * 1e3
    per_request = cpu * 1e3 / len(ordered) if cpu is not None and ordered else math.nan
    return len(ordered) / seconds, p50, p99, per_request


def server_cpu(group: int) -> float | None:
    """CPU seconds (user + system) used so far by the processes of process group ``group`` (the
    uvicorn supervisor and its workers; read from /proc, None where there is none). The
    difference over a phase divided by its answered requests is the server's CPU per request,
    which depends less on what else runs on the machine than requests/s do."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, seen = 0, False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        if int(fields[2]) == group:  # field 5 of stat: the process group
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
            seen = True
    return total / ticks if seen else None


def spread(values: list[float], form: str) -> str:
    """min / median / max of ``values``."""
    return " / ".join(
        format(v, form) for v in (min(values), statistics.median(values), max(values))
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> str:
    names = ("critflow", "fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "aiohttp")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def durability(url: str) -> str:
    """The settings that decide whether an acknowledged commit survives a power loss."""
    engine = make_engine(url)
    with engine.connect() as connection:
        if engine.url.get_backend_name() == "sqlite":
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
            names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
            text_ = f"SQLite {sqlite3.sqlite_version}, journal_mode={journal}, "
            text_ += f"synchronous={names.get(synchronous, synchronous)}"
        else:
            settings = [
                f"{name}={connection.exec_driver_sql(f'SHOW {name}').scalar()}"
                for name in ("fsync", "synchronous_commit", "wal_sync_method")
            ]
            server = connection.exec_driver_sql("SHOW server_version").scalar()
            text_ = f"PostgreSQL {server}, " + ", ".join(settings)
    engine.dispose()
    return text_


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def postgres_url(url: str | None, count: int, reuse: bool) -> tuple[str, bool]:
    """A database ``critflow_load_<count>`` on the server; True when it is filled already."""
    url = url or os.environ.get("CRITFLOW_TEST_DATABASE_URL")
    if not url:
        url = subprocess.check_output(
            [str(Path(__file__).parents[1] / ".ci" / "postgres")], text=True
        ).strip()
    import psycopg

    admin = url.replace("postgresql+psycopg://", "postgresql://")
    name = f"critflow_load_{count}"
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not (reuse and exists):
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name, bool(reuse and exists)


PHASES = ("public reads", "authorised reads", "creates", "appends")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passports", type=int, default=1_000_000)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path, help="keep the filled databases here (reused)")
    parser.add_argument("--postgres", help="PostgreSQL server URL (default: the test server)")
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="load generator for reads and creates: wrk (apt install wrk; auto uses it when "
        "installed) or this script's aiohttp clients (appends always use them: If-Match needs "
        "each passport's ETag)",
    )
    args = parser.parse_args()
    import shutil

    use_wrk = args.driver == "wrk" or (args.driver == "auto" and shutil.which("wrk") is not None)
    if args.driver == "wrk" and shutil.which("wrk") is None:
        parser.error("--driver wrk: wrk is not installed (apt install wrk, or --driver aiohttp)")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    folder = args.folder or Path(tempfile.mkdtemp(prefix="critflow-registry-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}"
    )
    print(f"Python {platform.python_version()}; {versions()}")
    print(
        f"{args.clients} clients, {args.workers} workers, {args.rounds} interleaved rounds of "
        f"{args.seconds:g} s per phase; figures are min / median / max over the rounds"
    )
    driver = "wrk " + _wrk_version() if use_wrk else "aiohttp"
    print(f"load generator: {driver} for reads and creates, aiohttp for appends")
    for database in args.databases:
        keys_file = folder / f"{database}-{args.passports}.keys.json"
        key_file = folder / f"{database}-{args.passports}.key"
        if database == "sqlite":
            path = folder / f"registry-{args.passports}.db"
            url = f"sqlite:///{path}"
            filled = path.exists() and keys_file.exists()
        else:
            url, filled = postgres_url(args.postgres, args.passports, keys_file.exists())
        print(f"\n{database}: {args.passports:,} passports ({durability_or_new(url, filled)})")
        if filled:
            keys = json.loads(keys_file.read_text())
            print("  reusing the filled database")
        else:
            for leftover in (key_file, key_file.with_suffix(".pub")):
                leftover.unlink(missing_ok=True)
            issuer, reader = fill(url, key_file, args.passports)
            keys = {"issuer": issuer, "reader": reader}
            keys_file.write_text(json.dumps(keys))
            print(f"  {durability(url)}")
        port = free_port()
        server = start_server(url, key_file, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        results: dict[str, list[tuple[float, float, float]]] = {p: [] for p in PHASES}
        print(f"  before: {load()}")
        try:
            for round_ in range(args.rounds):
                for phase in PHASES:
                    if round_ == 0:  # warm up: keys verified once per worker, connections opened
                        asyncio.run(drive(base, phase, 1.0, args.clients, args.passports, keys))
                    before = server_cpu(server.pid)
                    if use_wrk and phase != "appends":
                        n, p50, p99, failed = wrk_drive(
                            base, phase, args.seconds, args.clients, args.passports, keys, folder
                        )
                        after = server_cpu(server.pid)
                        if failed:
                            print(f"  ({failed} error responses in {phase})")
                        used = after - before if before is not None and after is not None else None
                        per = used * 1e3 / n if used is not None and n else math.nan
                        results[phase].append((n / args.seconds, p50, p99, per))
                        continue
                    latencies = asyncio.run(
                        drive(base, phase, args.seconds, args.clients, args.passports, keys)
                    )
                    after = server_cpu(server.pid)
                    used = after - before if before is not None and after is not None else None
                    results[phase].append(measure(latencies, args.seconds, used))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
        print(f"  after:  {load()}")
        print(
            f"  {'phase':<18} {'requests/s':>24}   {'p50 ms':>18}   {'p99 ms':>20}"
            f"   {'server CPU ms/req':>20}"
        )
        for phase in PHASES:
            rates, p50s, p99s, cpus = zip(*results[phase], strict=True)
            print(
                f"  {phase:<18} {spread(list(rates), ',.0f'):>24}   {spread(list(p50s), '.1f'):>18}"
                f"   {spread(list(p99s), '.1f'):>20}   {spread(list(cpus), '.2f'):>20}"
            )
    print(f"\n(databases under {folder}; delete when done)")


def durability_or_new(url: str, filled: bool) -> str:
    return durability(url) if filled else "new"


if __name__ == "__main__":
    main()
