"""``critflow passport …``: validate, sign, verify, view, export and issue passports."""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from critflow.cli.common import AllowOutsideFiles, as_flags, out
from critflow.errors import CritflowError, Problem

passport_app = typer.Typer(
    name="passport",
    help="Battery and material-lot passports: validate, sign, verify, view, export.",
    no_args_is_help=True,
)


def _read_document(path: Path) -> dict:
    from critflow.passport.safeio import read_document

    return read_document(path)


@passport_app.command("schema")
def schema(
    kind: Annotated[str, typer.Option(help="battery or lot.")] = "battery",
) -> None:
    """Print the JSON Schema of a passport document (generated from the data-point file)."""
    from critflow.passport.battery import battery_schema
    from critflow.passport.lot import LotPassport

    if kind not in ("battery", "lot"):
        raise CritflowError("--kind", f"'{kind}' is not a passport kind", "Use battery or lot.")
    document = battery_schema() if kind == "battery" else LotPassport.model_json_schema()
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@passport_app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Passport documents (JSON or YAML).")],
) -> None:
    """Check passports: mandatory data points per category, units, ranges, identifiers."""
    from critflow.passport.battery import pending_fields
    from critflow.passport.lot import validate_document

    problems = []
    for path in files:
        document = _read_document(path)
        try:
            validate_document(document, where=str(path))
        except CritflowError as exc:
            problems += exc.problems
            continue
        note = ""
        if document.get("kind") == "battery":
            pending = pending_fields(document["category"])
            note = (
                f" ({len(pending)} data points pending: "
                + ", ".join(str(p.nr) for p in pending)
                + ")"
            )
        out.print(f"[green]✓[/green] {escape(str(path))}: valid {document['kind']} passport{note}")
    if problems:
        raise CritflowError(problems)


@passport_app.command("keygen")
def keygen(
    stem: Annotated[Path, typer.Option("--out", help="Writes STEM.key (private) and STEM.pub.")],
) -> None:
    """Create an issuer's Ed25519 key pair."""
    from critflow.passport.integrity import SigningKey

    if stem.with_suffix(".key").exists():
        raise CritflowError(str(stem.with_suffix(".key")), "exists already", "Choose another name.")
    private, public = SigningKey.generate().save(stem)
    out.print(f"Private key: {private} (keep it secret)\nPublic key:  {public}")


@passport_app.command("sign")
def sign(
    file: Annotated[Path, typer.Argument(help="The passport document to sign.")],
    key: Annotated[Path, typer.Option(help="The issuer's private key (STEM.key).")],
    chain: Annotated[Path, typer.Option(help="The passport's folder of versions.")],
) -> None:
    """Validate a document and add it as the next signed version of its passport."""
    from critflow.passport import chain as chains
    from critflow.passport.integrity import SigningKey
    from critflow.passport.lot import validate_document

    document = _read_document(file)
    validate_document(document, where=str(file))
    signer = SigningKey.load(key)
    if chains.latest(chain) is None:
        path = chains.issue(document, signer, chain)
    else:
        path = chains.append(chain, document, signer)
    out.print(f"Signed version written: {path}")


@passport_app.command("status")
def status(
    chain: Annotated[Path, typer.Argument(help="The passport's folder of versions.")],
    to: Annotated[
        str, typer.Option("--to", help="New status (re-used, repurposed, waste, recycled …).")
    ],
    key: Annotated[Path, typer.Option(help="The issuer's private key.")],
    new: Annotated[
        Path | None, typer.Option(help="Document of the new passport (repurposing).")
    ] = None,
    new_chain: Annotated[Path | None, typer.Option(help="Folder of the new passport.")] = None,
) -> None:
    """Change a passport's status; repurposing starts a linked passport, recycling closes it."""
    from critflow.passport import chain as chains
    from critflow.passport.integrity import SigningKey
    from critflow.passport.lot import validate_document

    document = None
    if new is not None:
        document = _read_document(new)
        validate_document(document, where=str(new))
    written = chains.change_status(chain, to, SigningKey.load(key), document, new_chain)
    for path in written:
        out.print(f"Written: {path}")


@passport_app.command("verify")
def verify(
    path: Annotated[Path, typer.Argument(help="A version file or a folder of passports.")],
    trusted: Annotated[
        list[Path] | None,
        typer.Option(help="Public keys (STEM.pub) of trusted issuers; one file per issuer."),
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="Signed checkpoints (latest version and head hash) to detect rollback."),
    ] = None,
    max_age: Annotated[
        str | None,
        typer.Option(help="Refuse checkpoints older than this (e.g. 24h, 7d)."),
    ] = None,
) -> None:
    """Check hashes, signatures, links, signers and trust offline; exit 2 naming each problem.

    Every version must be signed by the chain's issuer (the key of version 1) or a key the issuer
    delegated; the issuer's key must be one of --trusted. A --checkpoint from the issuer shows
    whether versions after the given ones exist (rollback).
    """
    from critflow.passport import checkpoint as checkpoints
    from critflow.passport.integrity import (
        Unreadable,
        key_id,
        load_trusted,
        read_envelopes,
        verify_chain,
    )

    anchors = load_trusted(trusted or [])
    age = checkpoints.parse_duration(max_age) if max_age is not None else None
    if (checkpoint or age is not None) and not anchors:
        raise CritflowError(
            "--checkpoint",
            "a checkpoint is only as good as the key that signed it",
            "Pass the issuer's (or registry's) public key with --trusted.",
        )
    if age is not None and not checkpoint:
        raise CritflowError("--max-age", "applies to checkpoints", "Give --checkpoint too.")
    published: dict[str, checkpoints.Checkpoint] = {}
    problems: list[Problem] = []
    for file in checkpoint or []:
        found = checkpoints.verify_checkpoint(checkpoints.read_checkpoint(file), anchors, str(file))
        other = published.get(found.passport_id)
        if other and other.version == found.version and other.head_hash != found.head_hash:
            problems.append(
                Problem(
                    found.passport_id,
                    f"the checkpoints {other.source} and {file} name two different versions "
                    f"{found.version}: the issuer signed a fork",
                    "Report it to the issuer; trust neither until it is explained.",
                )
            )
        if other is None or found.version > other.version:
            published[found.passport_id] = found
    groups = read_envelopes(path)
    for versions in groups.values():
        if all(isinstance(envelope, Unreadable) for _, envelope in versions):
            for name, envelope in versions:
                out.print(
                    f"[red]✗[/red] {escape(_printable(name))}: {escape(_printable(envelope.reason))}"
                )
                problems.append(Problem(name, envelope.reason, envelope.fix))
            continue
        report = verify_chain(versions, anchors if anchors else None)
        lines = [
            f"integrity: {'hashes, signatures, links and signers hold' if report.intact else 'BROKEN'}"
        ]
        if report.signers:
            lines.append(
                "signed by: "
                + "; ".join(
                    f"key {key_id(key)} ({'issuer' if key == report.issuer else 'delegate'}) "
                    f"version{'s' if len(numbers) > 1 else ''} {_ranges(numbers)}"
                    for key, numbers in report.signers
                )
            )
        if report.delegates:
            lines.append("delegates: " + ", ".join(sorted(key_id(k) for k in report.delegates)))
        issuer = key_id(report.issuer) if report.issuer else "?"
        if report.issuer is None:
            trust = "not established (the first version does not verify)"
        elif not anchors:
            trust = f"issuer key {issuer} is NOT trusted: no --trusted key was given"
        elif report.issuer in anchors:
            trust = f"issuer key {issuer} is trusted ({anchors[report.issuer]})"
        else:
            trust = f"issuer key {issuer} is NOT trusted (not among the --trusted keys)"
        lines.append(f"trust:     {trust}")
        failures = []
        if not report.intact:
            failures.append(report.broken or "")
        elif report.issuer not in anchors:
            failures.append(
                f"{len(versions)} version(s) intact, but signed by key {issuer}, which is not "
                "trusted" + ("" if anchors else " (no --trusted key was given)")
            )
        published_here = published.pop(report.passport_id, None)
        if published_here is not None and report.intact:
            finding = checkpoints.compare(published_here, report, anchors) or (
                checkpoints.freshness(published_here, age)
            )
            finding = finding and as_flags(finding, "passport")  # max_age= is --max-age here
            state = finding or (
                f"version {published_here.version} of "
                f"{published_here.issued_at.isoformat()} signed by key "
                f"{key_id(published_here.signer)}: the chain reaches it"
                + (
                    f" ({report.versions - published_here.version} newer version(s) after it)"
                    if report.versions > published_here.version
                    else ""
                )
            )
            lines.append(f"checkpoint: {state}")
            if finding:
                failures.append(finding)
        elif checkpoint and report.intact:
            lines.append("checkpoint: none given for this passport (rollback not checked)")
        closed = " (closed: recycled)" if report.closed else ""
        if failures:
            out.print(
                f"[red]✗[/red] {escape(_printable(report.passport_id))}: {escape(_printable(failures[0]))}"
            )
            problems += [Problem(report.passport_id, f, _verify_fix(f)) for f in failures]
        else:
            out.print(
                f"[green]✓[/green] {escape(_printable(report.passport_id))}: {report.versions} version(s) "
                f"verify{closed}"
            )
        for line in lines:
            out.print(f"    {escape(_printable(line))}", highlight=False)
    for missing in published.values():
        problems.append(
            Problem(
                missing.passport_id,
                f"the checkpoint {missing.source} names version {missing.version}, but no "
                f"version of this passport is in {path}: the whole chain was withheld",
                "Fetch the passport's versions from its issuer.",
            )
        )
    if problems:  # file contents reach the terminal only as printable text (no escape codes)
        raise CritflowError(
            [Problem(_printable(p.where), _printable(p.what), p.fix) for p in problems]
        )


def _printable(text: str) -> str:
    """``text`` with control characters (terminal escape codes, newlines) shown as ``\\xNN``."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _ranges(numbers: tuple[int, ...]) -> str:
    """``1-3, 5`` for (1, 2, 3, 5)."""
    parts: list[str] = []
    start = previous = numbers[0]
    for number in (*numbers[1:], None):
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(f"{start}-{previous}" if previous > start else f"{start}")
        if number is not None:
            start = previous = number
    return ", ".join(parts)


def _verify_fix(finding: str) -> str:
    if "not trusted" in finding:
        return (
            "Verify against the issuer's public key (--trusted STEM.pub) obtained from the issuer."
        )
    if "rollback" in finding or "withheld" in finding or "older than" in finding:
        return "Fetch the newest versions (and checkpoint) from the issuer."
    return "The chain was changed or is incomplete; get an intact copy from the issuer."


@passport_app.command("delegate")
def delegate(
    chain: Annotated[Path, typer.Argument(help="The passport's folder of versions.")],
    key: Annotated[Path, typer.Option(help="The issuer's private key (STEM.key).")],
    to: Annotated[
        list[Path] | None, typer.Option(help="Public key (STEM.pub) that may sign next versions.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Revoke every delegate.")] = False,
) -> None:
    """Let other keys sign the passport's next versions (a signed version names them)."""
    from critflow.passport import chain as chains
    from critflow.passport.integrity import SigningKey, key_id, load_trusted

    if bool(to) == clear:
        raise CritflowError(
            "--to", "give the delegated keys with --to, or --clear to revoke all", ""
        )
    keys = list(load_trusted(to or []))
    path = chains.delegate(chain, SigningKey.load(key), keys)
    named = ", ".join(key_id(k) for k in keys) or "no key (all revoked)"
    out.print(f"Delegation written: {path}; delegates: {named}")


@passport_app.command("checkpoint")
def checkpoint_command(
    chain: Annotated[Path, typer.Argument(help="The passport's folder of versions.")],
    key: Annotated[Path, typer.Option(help="The issuer's private key (STEM.key).")],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the checkpoint here (JSON).")
    ] = None,
) -> None:
    """Sign a checkpoint of the passport's newest version, for verifiers to detect rollback."""
    from critflow.passport import chain as chains
    from critflow.passport.checkpoint import checkpoint_of
    from critflow.passport.integrity import SigningKey, read_envelopes, verify_chain

    signer = SigningKey.load(key)
    if chains.latest(chain) is None:
        raise CritflowError(str(chain), "holds no passport", "Give the passport's folder.")
    (versions,) = read_envelopes(chain).values()
    text = json.dumps(checkpoint_of(verify_chain(versions), signer), indent=1)
    if out_path is None:
        sys.stdout.write(text + "\n")
        return
    try:
        out_path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CritflowError(
            str(out_path), f"cannot be written ({exc.strerror or exc})", "Choose another path."
        ) from None
    out.print(f"Checkpoint written: {out_path}")


@passport_app.command("view")
def view(
    file: Annotated[Path, typer.Argument(help="A passport document or version file.")],
    audience: Annotated[
        str, typer.Option(help="public, legitimate_interest, authority or issuer.")
    ] = "public",
) -> None:
    """Print what one audience may read of a battery passport (Art. 77(2))."""
    from critflow.passport.views import view as project

    document = _read_document(file)
    if document.get("kind") not in ("battery", "lot"):
        raise CritflowError(
            f"{file}: kind", "is neither battery nor lot", "Check it with `passport validate`."
        )
    if document["kind"] == "battery" and not isinstance(document.get("data", {}), dict):
        raise CritflowError(
            f"{file}: data", "is not a mapping of data points", "Check it with `passport validate`."
        )
    sys.stdout.write(json.dumps(project(document, audience), indent=2, ensure_ascii=False) + "\n")


#: export format → the extension its file gets (each its own, so no format overwrites another's)
EXPORT_EXTENSIONS = {
    "aas": ".aas.json",
    "aasx": ".aasx",
    "batterypass": ".batterypass.json",
    "jsonld": ".jsonld",
}


def export_path(stem: Path, output_format: str) -> Path:
    """The file of one format: ``out/passport`` (or ``out/passport.json``, any export
    extension is replaced) → ``out/passport.aas.json``, ``out/passport.aasx`` …"""
    name = stem.name
    for extension in sorted({*EXPORT_EXTENSIONS.values(), ".json"}, key=len, reverse=True):
        if name.lower().endswith(extension) and len(name) > len(extension):
            name = name[: -len(extension)]
            break
    return stem.with_name(name + EXPORT_EXTENSIONS[output_format])


@passport_app.command("export")
def export(
    files: Annotated[list[Path], typer.Argument(help="Battery passport documents.")],
    output_formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            help="aas (AAS JSON), aasx, batterypass, jsonld, or all; repeat for several. "
            "Default: aas.",
        ),
    ] = None,
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Path and stem of the files: out/passport writes out/passport.aas.json, "
            ".aasx, .batterypass.json, .jsonld (a .json ending is dropped). Folders are created.",
        ),
    ] = Path("passports"),
) -> None:
    """Export battery passports: IDTA 02035 AAS (JSON or AASX), BatteryPass JSON or JSON-LD.

    Each format has its own extension, so exporting several formats to one --out never
    overwrites another format's file. A BatteryPass export reads back with `passport validate`.
    """
    from critflow.cli.common import split
    from critflow.passport.aas import write_aas
    from critflow.passport.exports import batterypass_payload, jsonld
    from critflow.passport.lot import validate_document

    formats = split(output_formats) or ["aas"]
    if "all" in formats:
        formats = list(EXPORT_EXTENSIONS)
    for name in formats:
        if name not in EXPORT_EXTENSIONS:
            raise CritflowError(
                "--format",
                f"'{name}' is not an export format",
                f"Use {', '.join(EXPORT_EXTENSIONS)} or all.",
            )
    documents = []
    for path in files:
        document = _read_document(path)
        validate_document(document, where=str(path))
        if document.get("kind") != "battery":
            raise CritflowError(
                str(path), "is not a battery passport", "Exports are for battery passports."
            )
        documents.append(document)
    for output_format in dict.fromkeys(formats):
        target = export_path(out_path, output_format)
        try:
            if target.is_dir():
                raise IsADirectoryError(21, "it is a folder")
            blocking = next((f for f in target.parents if f.exists() and not f.is_dir()), None)
            if blocking is not None:
                raise NotADirectoryError(20, f"{blocking} is a file, not a folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            if output_format in ("aas", "aasx"):
                write_aas(documents, target)  # .aas.json is AAS JSON, .aasx a package
            else:
                convert = batterypass_payload if output_format == "batterypass" else jsonld
                items = [convert(d) for d in documents]
                target.write_text(
                    json.dumps(items[0] if len(items) == 1 else items, indent=2, ensure_ascii=False)
                    + "\n",
                    encoding="utf-8",
                )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CritflowError(
                str(target),
                f"the {output_format} export cannot be written ({reason})",
                "Give --out a path in a folder you can write to, not an existing folder "
                "(--out out/passport writes out/passport" + EXPORT_EXTENSIONS[output_format] + ").",
            ) from None
        out.print(
            f"Exported {len(documents)} passport(s) as {output_format}: {escape(str(target))}"
        )


@passport_app.command("qr")
def qr(
    source: Annotated[str, typer.Argument(help="A Digital Link URI or a battery passport file.")],
    out_path: Annotated[Path, typer.Option("--out", help="QR image, .png or .svg.")] = Path(
        "passport-qr.svg"
    ),
) -> None:
    """QR code of a battery's Digital Link (checked: GTIN check digit, serial characters)."""
    from critflow.passport.identity import DigitalLink, IdentifierError, write_qr

    uri = source
    if not source.startswith(("http://", "https://")):
        data = _read_document(Path(source)).get("data")
        uri = str(data.get("unique_identifier", "")) if isinstance(data, dict) else ""
    try:
        link = DigitalLink.parse(uri)
        write_qr(link.uri, out_path)
    except IdentifierError as exc:
        raise CritflowError("identifier", str(exc), "Fix the GTIN or serial.") from None
    out.print(f"QR code of {link.uri}: {out_path}")


@passport_app.command("issue")
def issue(
    model: Annotated[Path, typer.Argument(help="Model file.")],
    output_flow: Annotated[
        str, typer.Option("--output-flow", help="The flow whose output is the lot.")
    ],
    scenario: Annotated[str | None, typer.Option(help="Scenario; the first by default.")] = None,
    period: Annotated[int | None, typer.Option(help="Year; the last by default.")] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the document here (JSON).")
    ] = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Fill a material-lot passport from a solved model (composition, recycled content, custody)."""
    from critflow.engine import solve
    from critflow.model import load_model
    from critflow.passport.from_model import lot_from_flow
    from critflow.passport.lot import lot_summary, validate_lot

    loaded = load_model(model, allow_outside_files=allow_outside_files)
    results = solve(loaded, [scenario] if scenario else None)
    document = lot_from_flow(loaded, results, output_flow, scenario, period)
    validate_lot(document)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out_path is None:
        sys.stdout.write(text + "\n")
        return
    out_path.write_text(text, encoding="utf-8")
    out.print(f"Lot passport written: {out_path}")
    out.print(lot_summary(document))
