"""``critflow demo``: the gallery of example models (``examples/gallery.yaml``) — list them, or run
one as ``critflow run`` would."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from critflow.cli.common import out
from critflow.errors import CritflowError, nearest

#: The examples folder of a source checkout (src/critflow/cli/demo.py → the repository root).
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
GALLERY = "gallery.yaml"


def load_gallery(examples: Path = EXAMPLES) -> list[dict]:
    """The gallery's entries (name, file, question, headline), checked: every entry names a model
    file that exists in ``examples``, and names are unique."""
    import yaml

    index = examples / GALLERY
    if not index.is_file():
        raise CritflowError(
            str(index),
            "the gallery index is missing",
            "critflow demo runs the models of a source checkout's examples/ folder; give that "
            "folder with --examples.",
        )
    try:
        document = yaml.safe_load(index.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CritflowError(
            str(index), f"is not a readable YAML file ({type(exc).__name__})", "Fix its syntax."
        ) from None
    entries = document.get("models") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CritflowError(str(index), "has no 'models:' list", "List the gallery's models.")
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{index} (models[{i}])"
        if not isinstance(entry, dict) or not {"name", "file", "question"} <= set(entry):
            raise CritflowError(where, "an entry needs name, file and question", "Add them.")
        if not all(isinstance(entry[k], str) for k in ("name", "file", "question")):
            raise CritflowError(where, "name, file and question are texts", "Write them as texts.")
        if entry["name"] in seen:
            raise CritflowError(where, f"the name '{entry['name']}' is used twice", "Rename one.")
        seen.add(entry["name"])
        if not (examples / entry["file"]).is_file():
            raise CritflowError(
                where, f"no model file '{entry['file']}' in {examples}", "Fix the file name."
            )
    return entries


def demo(
    name: Annotated[
        str | None, typer.Argument(help="Gallery model to run (see --list).", show_default=False)
    ] = None,
    list_models: Annotated[
        bool,
        typer.Option("--list", help="List the gallery's models and the question each answers."),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder; default out/<model file name>/."),
    ] = None,
    samples: Annotated[
        int, typer.Option(help="Monte Carlo samples of the values with distributions (0: none).")
    ] = 0,
    examples: Annotated[
        Path, typer.Option(help="The examples folder holding gallery.yaml.")
    ] = EXAMPLES,
) -> None:
    """Run a model of the gallery (examples/gallery.yaml) as `critflow run` does, or list them."""
    entries = load_gallery(examples)
    if list_models or name is None:
        table = Table(title="critflow gallery: `critflow demo NAME` runs one", title_justify="left")
        for column in ("name", "question", "file"):
            table.add_column(column)
        for entry in entries:
            table.add_row(entry["name"], entry["question"], f"examples/{entry['file']}")
        out.print(table)
        return
    chosen = next((e for e in entries if e["name"] == name), None)
    if chosen is None:
        names = [e["name"] for e in entries]
        raise CritflowError(
            "NAME",
            f"'{name}' is not a model of the gallery",
            f"{nearest(name, names)} Models: {', '.join(names)} (critflow demo --list).".strip(),
        )
    path = examples / chosen["file"]
    if is_blend_problem(path):  # a scrap-blending problem (critflow_blend: 1), not a model
        from critflow.cli.blend import blend

        out_file = None
        if out_dir is not None:
            out_file = _blend_out_file(out_dir)
        blend(path, None, None, None, out_file)
        return
    from critflow.cli.run import run

    run(path, out_dir=out_dir, samples=samples)


def is_blend_problem(path: Path) -> bool:
    """True for a scrap-blending problem file (its first key is ``critflow_blend``)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            text = line.split("#", 1)[0].strip()
            if text:
                return text.startswith("critflow_blend:")
    return False


BLEND_FILE = "blend.json"
#: keys of a ``critflow blend --format json`` document (how a folder of an earlier blend demo is known)
_BLEND_KEYS = {"problem", "objective", "totals", "recipe"}


def _blend_out_file(out_dir: Path) -> Path:
    """Where ``critflow demo BLEND --out DIR`` writes: DIR/blend.json. As for a run (``critflow
    run --out``), a file, a folder under a file, or a folder holding anything but the blend.json
    of an earlier blend demo is refused before anything is written (the folder is made only when
    blend.json is written, after the blend is solved)."""
    import json

    blocker = next((p for p in (out_dir, *out_dir.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise CritflowError(
            str(out_dir),
            "is a file, not a folder"
            if blocker == out_dir
            else f"{blocker} is a file, not a folder",
            "Give a folder with --out.",
        )
    target = out_dir / BLEND_FILE
    if out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name != BLEND_FILE)
        if target.exists():
            try:
                earlier = json.loads(target.read_text(encoding="utf-8"))
                ours = isinstance(earlier, dict) and set(earlier) >= _BLEND_KEYS
            except (OSError, ValueError):
                ours = False
            if not ours:
                foreign.insert(0, BLEND_FILE)
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise CritflowError(
                str(out_dir),
                f"holds files that are not the output of a critflow blend demo ({shown}); "
                f"they would be lost or mixed with {BLEND_FILE}",
                "Give a new or empty folder with --out, or move those files out first.",
            )
    return target
