"""``critflow passport …``: validate, sign, verify, view, export and issue passports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from critflow.errors import CritflowError

passport_app = typer.Typer(
    name="passport",
    help="Battery and material-lot passports: validate, sign, verify, view, export.",
    no_args_is_help=True,
)
out = Console()
if not out.is_terminal:  # piped or captured: one line per result
    out = Console(width=200)


def read_document(path: Path) -> dict[str, Any]:
    """A passport document from JSON or YAML; a signed version file gives its document."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CritflowError(
            str(path), f"cannot be read ({exc.strerror or exc})", "Check the path."
        ) from None
    try:
        value = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CritflowError(
            str(path), f"is not valid JSON/YAML ({exc})", "Fix the syntax."
        ) from None
    if isinstance(value, dict) and "record" in value and "signature" in value:
        value = value["record"].get("document")
    if not isinstance(value, dict):
        raise CritflowError(str(path), "does not hold a passport document (a mapping)", "")
    return value


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
        document = read_document(path)
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

    document = read_document(file)
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
        document = read_document(new)
        validate_document(document, where=str(new))
    written = chains.change_status(chain, to, SigningKey.load(key), document, new_chain)
    for path in written:
        out.print(f"Written: {path}")


@passport_app.command("verify")
def verify(
    path: Annotated[Path, typer.Argument(help="A version file or a folder of passports.")],
    trusted: Annotated[
        list[Path] | None, typer.Option(help="Public keys (STEM.pub) of trusted issuers.")
    ] = None,
) -> None:
    """Check hashes, signatures and links offline; exit 1 and name the first broken link."""
    from critflow.passport.integrity import read_envelopes, verify_chain

    if not path.exists():
        raise CritflowError(str(path), "does not exist", "Give a version file or a folder.")
    keys = {p.read_text(encoding="utf-8").strip() for p in trusted} if trusted else None
    broken = 0
    for versions in read_envelopes(path).values():
        report = verify_chain(versions, keys)
        if report.ok:
            state = " (closed: recycled)" if report.closed else ""
            out.print(
                f"[green]✓[/green] {escape(report.passport_id)}: {report.versions} version(s) verify{state}"
            )
        else:
            broken += 1
            out.print(f"[red]✗[/red] {escape(report.passport_id)}: {escape(report.broken or '')}")
    if broken:
        raise typer.Exit(1)


@passport_app.command("view")
def view(
    file: Annotated[Path, typer.Argument(help="A passport document or version file.")],
    audience: Annotated[
        str, typer.Option(help="public, legitimate_interest, authority or issuer.")
    ] = "public",
) -> None:
    """Print what one audience may read of a battery passport (Art. 77(2))."""
    from critflow.passport.views import view as project

    sys.stdout.write(
        json.dumps(project(read_document(file), audience), indent=2, ensure_ascii=False) + "\n"
    )


@passport_app.command("export")
def export(
    files: Annotated[list[Path], typer.Argument(help="Battery passport documents.")],
    output_format: Annotated[
        str, typer.Option("--format", help="aas, aasx, batterypass or jsonld.")
    ] = "aas",
    out_path: Annotated[Path, typer.Option("--out", help="Output file.")] = Path("passports.json"),
) -> None:
    """Export battery passports: IDTA 02035 AAS (JSON or AASX), BatteryPass JSON or JSON-LD."""
    from critflow.passport.aas import write_aas
    from critflow.passport.exports import batterypass_payload, jsonld
    from critflow.passport.lot import validate_document

    documents = []
    for path in files:
        document = read_document(path)
        validate_document(document, where=str(path))
        if document.get("kind") != "battery":
            raise CritflowError(
                str(path), "is not a battery passport", "Exports are for battery passports."
            )
        documents.append(document)
    formats = {"aas": ".json", "aasx": ".aasx", "batterypass": ".json", "jsonld": ".jsonld"}
    if output_format not in formats:
        raise CritflowError(
            "--format", f"'{output_format}' is not an export format", f"Use {', '.join(formats)}."
        )
    try:
        if output_format in ("aas", "aasx"):
            write_aas(documents, out_path.with_suffix(formats[output_format]))
            out_path = out_path.with_suffix(formats[output_format])
        else:
            convert = batterypass_payload if output_format == "batterypass" else jsonld
            items = [convert(d) for d in documents]
            out_path.write_text(
                json.dumps(items[0] if len(items) == 1 else items, indent=2, ensure_ascii=False),
                encoding="utf-8",
            )
    except OSError as exc:
        raise CritflowError(
            str(out_path), f"cannot be written ({exc.strerror or exc})", "Choose another path."
        ) from None
    out.print(f"Exported {len(documents)} passport(s) to {out_path}")


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
        uri = str(read_document(Path(source)).get("data", {}).get("unique_identifier", ""))
    try:
        link = DigitalLink.parse(uri)
        write_qr(link.uri, out_path)
    except IdentifierError as exc:
        raise CritflowError("identifier", str(exc), "Fix the GTIN or serial.") from None
    out.print(f"QR code of {link.uri}: {out_path}")


AllowOutsideFiles = Annotated[
    bool,
    typer.Option(
        "--allow-outside-files",
        help="Let the model read data files ({file: …}) outside its own folder. Off by default: "
        "a model from someone else could name any file on this machine.",
    ),
]


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
    from critflow.passport.lot import validate_lot

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


def lot_summary(document: dict) -> str:
    """One paragraph on a lot passport, from the document itself (so console and file agree)."""
    compound = document.get("compound")
    what = document["product"] + (f" ({compound['formula']})" if compound else "")
    mass = document["mass"]
    parts = [
        f"{what}: {mass['value']:,.1f} {mass['unit']}",
        ", ".join(
            f"{element} {c['mass_fraction']:.2%}" for element, c in document["composition"].items()
        ),
    ]
    footprint = document["carbon_footprint"]
    if footprint["status"] == "declared":
        parts.append(
            f"carbon footprint {footprint['value']:.4g} kg CO2-eq per kg of lot (declared)"
        )
    else:
        parts.append(f"carbon footprint pending: {footprint.get('note') or 'no value yet'}")
    return "; ".join(parts) + "."
