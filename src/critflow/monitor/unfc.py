"""UNFC-2019 classification of resource quantities (primary ore and anthropogenic sources).

Each quantity gets one category per axis — E (environmental-socio-economic viability), F
(technical feasibility and maturity), G (degree of confidence) — with a sub-category where known.
The combination names a class ("Viable projects", sub-class "On production") from the class table
``critflow/data/unfc/classes.yaml``; a contradictory combination (E1 with no project, F4) is a
CritflowError that says what would be valid. The questionnaire (``questionnaire.yaml``) leads
from answers to the categories and records the justification of each answer.

>>> from critflow.monitor.unfc import classify
>>> classify("E1.1", "F1.1", "G1").name, classify("E1.1", "F1.1", "G1").sub_class
('Viable projects', 'On production')
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from critflow import data
from critflow.errors import CritflowError, Problem, suggest

AXES = ("E", "F", "G")


@dataclass(frozen=True)
class Category:
    """A category (E1) or sub-category (E1.1) of one axis, with its definition and source."""

    code: str
    axis: str
    definition: str
    parent: str | None
    source: str
    anthropogenic: str = ""


@dataclass(frozen=True)
class UnfcClass:
    """The class of an E-F-G combination: ``name`` (e.g. 'Potentially viable projects'),
    ``sub_class`` ('Development pending') or None, ``code`` ('E2 F2.1 G2'). A combination UNFC
    codifies without a name is ``Other combinations`` (``named`` False)."""

    e: str
    f: str
    g: str
    name: str
    sub_class: str | None
    named: bool
    source: str
    note: str = ""

    @property
    def code(self) -> str:
        return f"{self.e} {self.f} {self.g}"

    @property
    def label(self) -> str:
        return self.name + (f" — {self.sub_class}" if self.sub_class else "")


@dataclass(frozen=True)
class Step:
    """One answered question on the questionnaire's path."""

    axis: str
    question: str
    text: str
    answer: str
    justification: str
    leads_to: str


def _source(entry: Mapping) -> str:
    src = entry.get("source") or {}
    return f"{src.get('document')}, {src.get('point')}" if src else ""


@lru_cache(maxsize=1)
def categories() -> dict[str, Category]:
    """Every category and sub-category by code ('E1', 'E1.1', …, 'G4.3')."""
    out: dict[str, Category] = {}
    for axis in data.unfc_data("categories")["axes"]:
        for cat in axis["categories"]:
            out[cat["code"]] = Category(
                cat["code"], axis["axis"], cat["definition"], None, _source(cat)
            )
            for sub in cat.get("sub_categories") or []:
                out[sub["code"]] = Category(
                    sub["code"],
                    axis["axis"],
                    sub["definition"],
                    cat["code"],
                    _source(sub),
                    sub.get("anthropogenic", ""),
                )
    return out


@lru_cache(maxsize=1)
def source_types() -> dict[str, str]:
    """The source types a quantity may come from (id -> description): ore, tailings, slag,
    landfill, waste-stream, in-use-stock."""
    return {s["id"]: s["name"] for s in data.unfc_data("categories")["source_types"]}


def _matches(code: str, patterns: Iterable[str]) -> bool:
    """'E1.2' matches 'E1' and 'E1.2'; 'E1' does not match 'E1.2'."""
    return any(code == p or code.startswith(p + ".") for p in patterns)


_CODE = re.compile(r"^\s*([EFGefg])\s*(\d)(?:\s*\.\s*(\d))?\s*$")


def normalise(code: object, axis: str) -> str:
    """'e1.1', 'E 1.1' and (on the E axis) '1.1' as 'E1.1'; a CritflowError naming the valid
    codes of ``axis`` for anything else."""
    text = str(code).strip()
    if re.fullmatch(r"\d(\.\d)?", text):
        text = axis + text
    match = _CODE.match(text)
    valid = [c for c, cat in categories().items() if cat.axis == axis]
    if match:
        result = (
            match.group(1).upper()
            + match.group(2)
            + (f".{match.group(3)}" if match.group(3) else "")
        )
        if result[0] == axis and result in categories():
            return result
    raise CritflowError(
        f"{axis.lower()}=",
        f"'{code}' is not a UNFC-2019 {axis} category or sub-category",
        suggest(text, valid, f"{axis} codes", limit=20),
    )


@lru_cache(maxsize=1)
def _class_table() -> dict[str, Any]:
    return data.unfc_data("classes")


def _valid_partners(axis: str, fixed: dict[str, str]) -> list[str]:
    """The categories of ``axis`` that the constraints allow with the other two codes fixed."""
    ok = []
    for code, cat in categories().items():
        if cat.axis != axis or cat.parent is not None:
            continue
        trial = {**fixed, axis: code}
        if not _violations(trial):
            ok.append(code)
    return ok


def _violations(codes: dict[str, str]) -> list[dict]:
    broken = []
    for rule in _class_table()["constraints"]:
        applies = all(_matches(codes[a.upper()], p) for a, p in rule["if"].items())
        if applies and not all(_matches(codes[a.upper()], p) for a, p in rule["then"].items()):
            broken.append(rule)
    return broken


def classify(e: str, f: str, g: str) -> UnfcClass:
    """The class (and sub-class) of the combination E-F-G. Codes are categories ('E2') or
    sub-categories ('F2.1'); a contradictory combination raises a CritflowError that gives the
    reason and the categories that would be valid with the other two."""
    codes = {"E": normalise(e, "E"), "F": normalise(f, "F"), "G": normalise(g, "G")}
    broken = _violations(codes)
    if broken:
        problems = []
        for rule in broken:
            (axis,) = [a.upper() for a in rule["then"]]
            fixed = {k: v for k, v in codes.items() if k != axis}
            valid = _valid_partners(axis, fixed)
            problems.append(
                Problem(
                    f"{codes['E']} {codes['F']} {codes['G']}",
                    f"not a valid UNFC combination: {rule['reason']}",
                    f"With {' and '.join(fixed.values())}, {axis} is one of "
                    f"{', '.join(valid) or 'none'} ({rule['source']['point']}).",
                )
            )
        raise CritflowError(problems)
    table = _class_table()
    for entry in table["classes"]:
        if all(_matches(codes[a], entry[a.lower()]) for a in AXES):
            sub = next(
                (
                    s["name"]
                    for s in entry.get("sub_classes") or []
                    if all(_matches(codes[a], s[a.lower()]) for a in ("E", "F"))
                ),
                None,
            )
            return UnfcClass(
                codes["E"], codes["F"], codes["G"], entry["name"], sub, True, _source(entry)
            )
    other = table["other_combinations"]
    return UnfcClass(
        codes["E"],
        codes["F"],
        codes["G"],
        other["name"],
        None,
        False,
        _source(other),
        other["note"],
    )


# ---------------------------------------------------------------------------- questionnaire


@lru_cache(maxsize=1)
def questionnaire() -> dict[str, dict[str, Any]]:
    """The questions by id, each with its axis, text, answers (answer -> next question or
    category) and source; ``start`` of each axis under the key '<axis>:start'."""
    out: dict[str, dict[str, Any]] = {}
    for axis in data.unfc_data("questionnaire")["axes"]:
        out[f"{axis['axis']}:start"] = {"id": axis["start"]}
        for q in axis["questions"]:
            out[q["id"]] = {**q, "axis": axis["axis"]}
    return out


def _answer(raw: Any, where: str) -> tuple[str, str]:
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"answer", "justification"}
        if unknown or "answer" not in raw:
            raise CritflowError(
                where,
                "an answer is a text or a mapping {answer: …, justification: …}"
                + (f"; unknown key {sorted(unknown)[0]!r}" if unknown else ""),
                "Write e.g. {answer: 'yes', justification: 'permit granted 2025-03'}.",
            )
        return str(raw["answer"]), str(raw.get("justification") or "")
    if isinstance(raw, bool):  # YAML reads a bare yes/no as a boolean
        return ("yes" if raw else "no"), ""
    return str(raw), ""


def categorise(
    answers: Mapping[str, Any], where: str = "answers"
) -> tuple[str, str, str, tuple[Step, ...]]:
    """The E, F and G codes the questionnaire leads to from ``answers`` (question id -> answer
    text, or {answer, justification}), and the path taken with each answer's justification.
    A question on the path without an answer, an unknown question or answer is a CritflowError."""
    questions = questionnaire()
    known_ids = [k for k in questions if ":" not in k]
    for key in answers:
        if key not in questions or ":" in key:
            raise CritflowError(
                f"{where}.{key}",
                f"there is no question '{key}'",
                suggest(str(key), known_ids, "Questions", limit=20),
            )
    result: dict[str, str] = {}
    steps: list[Step] = []
    for axis in AXES:
        qid = questions[f"{axis}:start"]["id"]
        for _ in range(len(questions)):  # a tree: at most every question once
            question = questions[qid]
            if qid not in answers:
                raise CritflowError(
                    f"{where}.{qid}",
                    f"the question '{question['text']}' is not answered",
                    f"Answer one of: {', '.join(repr(a) for a in question['answers'])}.",
                )
            answer, justification = _answer(answers[qid], f"{where}.{qid}")
            options = {str(a).lower(): a for a in question["answers"]}
            if answer.strip().lower() not in options:
                raise CritflowError(
                    f"{where}.{qid}",
                    f"'{answer}' is not an answer to '{question['text']}'",
                    f"Answer one of: {', '.join(repr(a) for a in question['answers'])}.",
                )
            outcome = question["answers"][options[answer.strip().lower()]]
            leads_to = outcome.get("category") or outcome["next"]
            steps.append(
                Step(
                    axis,
                    qid,
                    question["text"],
                    options[answer.strip().lower()],
                    justification,
                    leads_to,
                )
            )
            if "category" in outcome:
                result[axis] = outcome["category"]
                break
            qid = outcome["next"]
    return result["E"], result["F"], result["G"], tuple(steps)


# ---------------------------------------------------------------------------- quantities


class ClassifiedQuantity(BaseModel):
    """A resource quantity of a project classified with UNFC-2019: ``tonnes`` of ``element`` at
    the ``reference_point`` (the product, e.g. 'zinc metal in concentrate'), from a source of
    ``source_type``, with E, F and G codes, the justification, date and evaluator. ``domain`` is
    the roadmap focus domain it counts for (1.2 residues, 1.3 responsible mining)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str = Field(min_length=1)
    source: str = Field(default="", description="the source's name, e.g. a tailings pond")
    source_type: str
    element: str = Field(min_length=1)
    tonnes: float = Field(ge=0, allow_inf_nan=False)
    reference_point: str = Field(min_length=1)
    e: str
    f: str
    g: str
    justification: str = Field(min_length=1)
    steps: tuple[Step, ...] = ()
    date: dt.date
    evaluator: str = Field(min_length=1)
    domain: str | None = None

    @field_validator(
        "project", "source", "element", "reference_point", "justification", "evaluator"
    )
    @classmethod
    def _plain(cls, value: Any) -> Any:
        from critflow.monitor._files import no_control_characters

        return no_control_characters(value)

    @field_validator("element")
    @classmethod
    def _element(cls, value: str) -> str:
        """' zn ' and 'ZN' are 'Zn': one element, one row in the totals per class."""
        text = " ".join(value.split())
        if not text:
            raise ValueError("the element is empty; write its symbol, e.g. Zn")
        return text.capitalize() if len(text) <= 2 and text.isalpha() else text

    @field_validator("source_type")
    @classmethod
    def _known_source_type(cls, value: str) -> str:
        if value not in source_types():
            raise ValueError(
                f"'{value}' is not a source type; "
                + suggest(value, list(source_types()), "Source types")
            )
        return value

    @field_validator("e", "f", "g", mode="before")
    @classmethod
    def _code(cls, value: Any, info: Any) -> str:
        try:
            return normalise(value, info.field_name.upper())
        except CritflowError as exc:
            problem = exc.problems[0]
            raise ValueError(f"{problem.what}; {problem.fix}") from None

    @model_validator(mode="after")
    def _combination(self) -> ClassifiedQuantity:
        try:
            classify(self.e, self.f, self.g)
        except CritflowError as exc:
            raise ValueError(" ".join(f"{p.what}. {p.fix}" for p in exc.problems)) from None
        return self

    @property
    def unfc_class(self) -> UnfcClass:
        return classify(self.e, self.f, self.g)


@dataclass(frozen=True)
class ClassTotal:
    """Tonnes of one element in one class (and focus domain, when grouped by it)."""

    class_name: str
    element: str
    tonnes: float
    count: int
    domain: str | None = None


def _class_order() -> list[str]:
    table = _class_table()
    return [c["name"] for c in table["classes"]] + [table["other_combinations"]["name"]]


def quantities_by_class(
    quantities: Iterable[ClassifiedQuantity], by_domain: bool = False
) -> list[ClassTotal]:
    """Tonnes per class and element (and focus domain with ``by_domain``), in the class table's
    order, then by element. Quantities at different reference points are added as given: keep
    one reference point per element (e.g. metal content) to make the sums meaningful."""
    totals: dict[tuple[str, str, str | None], list[float]] = {}
    for q in quantities:
        key = (q.unfc_class.name, q.element, q.domain if by_domain else None)
        entry = totals.setdefault(key, [0.0, 0])
        entry[0] += q.tonnes
        entry[1] += 1
    order = {name: i for i, name in enumerate(_class_order())}
    rows = [
        ClassTotal(name, element, total, int(count), domain)
        for (name, element, domain), (total, count) in totals.items()
    ]
    return sorted(rows, key=lambda r: (order[r.class_name], r.element, r.domain or ""))


def _same_code(value: Any, axis: str) -> str | None:
    """``value`` as a normalised code of ``axis`` ('e 3.2' -> 'E3.2'); None when it is none."""
    try:
        return normalise(value, axis)
    except CritflowError:
        return None


def apply_answers(
    entry: dict[str, Any], answers: Any, where: Callable[[str], str]
) -> list[Problem]:
    """Fill ``entry``'s e, f, g, steps and (unless given) justification from the questionnaire's
    ``answers`` — the one resolution of answers, for classification files and the server. Answers
    that are not a mapping, or an unknown question or answer, raise a CritflowError; the codes of
    ``entry`` that disagree with the answers are returned as problems. ``where(key)`` names the
    place of ``key`` ('answers', 'e', …) of this entry."""
    if not isinstance(answers, Mapping):
        raise CritflowError(where("answers"), "answers is a mapping question -> answer")
    e, f, g, steps = categorise(answers, where=where("answers"))
    problems = []
    for axis, code in zip(("e", "f", "g"), (e, f, g), strict=True):
        if axis in entry and _same_code(entry[axis], axis.upper()) != code:
            problems.append(
                Problem(
                    where(axis),
                    f"{axis} is {entry[axis]} but the answers lead to {code}",
                    "Correct the code or the answers (or give only one of them).",
                )
            )
        entry[axis] = code
    entry["steps"] = steps
    entry.setdefault(
        "justification",
        "; ".join(
            f"{s.question}: {s.answer}" + (f" ({s.justification})" if s.justification else "")
            for s in steps
        ),
    )
    return problems


def load_classifications(path: str | Path, roadmap: Any = None) -> list[ClassifiedQuantity]:
    """Classified quantities from a YAML file: project-level keys (project, domain, evaluator,
    date) and ``quantities:``, each with source, source_type, element, tonnes, reference_point
    and either e/f/g with a justification or the questionnaire's ``answers`` (or both, which
    must agree). With ``roadmap`` (a :class:`~critflow.monitor.roadmap.Roadmap`), a ``domain``
    it does not have is a mistake. Mistakes are CritflowErrors naming file, line and field."""
    from pydantic import ValidationError

    from critflow.model.load import describe_error
    from critflow.monitor._files import read_document

    raw, source = read_document(
        path,
        "classification file",
        "Give the path of a UNFC classification (.yaml), e.g. examples/monitor/unfc_zinc_residue.yaml.",
    )
    shown = str(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("quantities"), list):
        raise CritflowError(
            shown,
            "a classification file is a mapping with a list 'quantities:'",
            "See examples/monitor/unfc_zinc_residue.yaml.",
        )
    shared = {k: raw[k] for k in ("project", "domain", "evaluator", "date") if k in raw}
    unknown = set(raw) - {"project", "domain", "evaluator", "date", "quantities", "title", "notes"}
    if unknown:
        key = sorted(unknown)[0]
        raise CritflowError(
            source.where(key),
            f"unknown key '{key}' at the top level",
            "Valid keys: project, domain, evaluator, date, quantities, title, notes.",
        )
    out: list[ClassifiedQuantity] = []
    problems: list[Problem] = []
    for i, item in enumerate(raw["quantities"]):
        where = ("quantities", i)
        if not isinstance(item, dict):
            problems.append(Problem(source.where(*where), "a quantity is a mapping"))
            continue
        entry = {**shared, **item}
        if "answers" in entry:
            try:
                problems.extend(
                    apply_answers(
                        entry, entry.pop("answers"), lambda key, at=where: source.where(*at, key)
                    )
                )
            except CritflowError as exc:
                problems.extend(exc.problems)
                continue
        domain = entry.get("domain")
        if roadmap is not None and domain is not None and str(domain) not in roadmap.domain_ids:
            at = (*where, "domain") if "domain" in item else ("domain",)
            problems.append(
                Problem(
                    source.where(*at),
                    f"there is no focus domain '{domain}' in roadmap {roadmap.id}",
                    suggest(str(domain), roadmap.domain_ids, "Focus domains"),
                )
            )
            continue
        try:
            out.append(ClassifiedQuantity.model_validate(entry))
        except ValidationError as exc:
            for err in exc.errors():
                problem = describe_error(err, source, ClassifiedQuantity)
                loc = tuple(err["loc"])
                path = (*where, *loc) if not loc or loc[0] not in shared or loc[0] in item else loc
                problems.append(Problem(source.where(*path), problem.what, problem.fix))
    if problems:
        raise CritflowError(list(dict.fromkeys(problems)))
    return out
