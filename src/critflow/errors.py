"""The one error type for user mistakes.

Every mistake in a model file, a measurement or a request is raised as a :class:`CritflowError`
that says *where* (file, line, field path), *what* is wrong, and *how to fix* it. The command line
prints it as a paragraph and exits with code 2; tracebacks are kept for bugs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One user mistake: where it is, what is wrong, and how to fix it."""

    where: str
    what: str
    fix: str = ""

    def __post_init__(self) -> None:
        resolve = getattr(self.where, "resolve", None)  # a place whose line is looked up late
        if resolve is not None:
            object.__setattr__(self, "where", resolve())  # frozen: set once, here

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text = f"{text.rstrip('.')}. {self.fix}"
        return text


@dataclass
class CritflowError(Exception):
    """A mistake in user input; holds one or more :class:`Problem` paragraphs."""

    problems: list[Problem] = field(default_factory=list)

    def __init__(self, where: str | list[Problem], what: str = "", fix: str = "") -> None:
        if isinstance(where, list):
            self.problems = list(where)
        else:
            self.problems = [Problem(where, what, fix)]
        super().__init__(str(self))

    def __str__(self) -> str:
        # the message names at most MAX_REPORTED problems and counts the rest (``problems`` keeps
        # them all): a model with 300 regions repeating one mistake is one paragraph, not 600
        named = [p for p in self.problems if not isinstance(p, CountedProblem)]
        counted = [p for p in self.problems if isinstance(p, CountedProblem)]
        shown: list[Problem] = named[:MAX_REPORTED]
        rest = len(named) - len(shown) + sum(c.more for c in counted)
        if rest and len(counted) == 1 and len(named) <= MAX_REPORTED:
            shown.append(counted[0])  # capped()'s own count, with its noun and fix
        elif rest:
            where = named[MAX_REPORTED].where if len(named) > MAX_REPORTED else counted[0].where
            shown.append(_more(where, rest, "problem", ""))
        return "\n\n".join(str(p) for p in shown)


@dataclass(frozen=True)
class CountedProblem(Problem):
    """The paragraph that counts the problems not named (``more`` of them)."""

    more: int = 0


def _more(where: str, rest: int, noun: str, fix: str) -> CountedProblem:
    return CountedProblem(
        where,
        f"and {rest:,} more {noun}{'s' if rest != 1 else ''} after these",
        fix or "Fix the ones above; most often one mistake repeats.",
        rest,
    )


MAX_REPORTED = 50
"""Most problems of one input named one by one (:func:`capped`); the rest are counted."""


def capped(problems: list[Problem], noun: str = "problem", fix: str = "") -> CritflowError:
    """The error of many problems: the first :data:`MAX_REPORTED` named, the rest counted in one
    more ("and 9,950 more problems after these"): 10,000 bad rows are one mistake repeated, not
    10,000 paragraphs. ``noun`` names what is counted."""
    if len(problems) <= MAX_REPORTED:
        return CritflowError(problems)
    rest = len(problems) - MAX_REPORTED
    return CritflowError(
        [*problems[:MAX_REPORTED], _more(problems[MAX_REPORTED].where, rest, noun, fix)]
    )


def nearest(name: str, candidates: list[str] | set[str] | tuple[str, ...]) -> str:
    """A 'did you mean' phrase naming the candidate closest to ``name`` (empty when none is close)."""
    import difflib

    texts = [str(c) for c in candidates]
    match = difflib.get_close_matches(str(name), texts, n=1, cutoff=0.5)
    if not match:  # 'BATTERY' for 'battery', 'co' for 'Co': compare without case
        lowered = {t.lower(): t for t in texts}
        found = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.5)
        match = [lowered[found[0]]] if found else []
    return f"Did you mean '{match[0]}'?" if match else ""


def known(candidates: list[str] | set[str] | tuple[str, ...], limit: int = 12) -> str:
    """A short list of valid names for an error message."""
    items = sorted(str(c) for c in candidates)
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def suggest(
    name: str,
    candidates: list[str] | set[str] | tuple[str, ...],
    label: str,
    limit: int = 12,
    then: str = "",
) -> str:
    """The fix of an unknown name: "Did you mean 'Co'? Elements: Co, Li, Ni." (the first sentence
    only when a candidate is close; ``label`` names what the candidates are; ``then`` is a further
    sentence on how to fix it)."""
    text = f"{nearest(name, candidates)} {label}: {known(candidates, limit) or 'none'}."
    return f"{text} {then}".strip()


def field_path(loc: tuple | list) -> str:
    """A pydantic error location as a field path: ('data', 'mass', 0) -> 'data.mass.0'."""
    return ".".join(str(part) for part in loc)


def validation_message(error: dict, with_input: bool = True) -> str:
    """One pydantic error's message, without pydantic's 'Value error, ' prefix and, when
    ``with_input``, with the value given (a scalar the message does not already show)."""
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    shown = error.get("input")
    scalar = shown is not None and not isinstance(shown, dict | list)
    if with_input and scalar and "got" not in message:
        given = repr(shown)
        if len(given) > 80:  # a 2 MB text is not repeated back: its start and its length
            given = f"{given[:60]}… ({len(str(shown)):,} characters)"
        message += f" (got {given})"
    return message


def validation_problems(
    errors: list[dict], where: str = "", with_input: bool = True
) -> list[Problem]:
    """pydantic's errors (``ValidationError.errors()``, or FastAPI's) as problems: each at
    '<where>: <field path>', duplicates dropped. The one converter for documents without a
    source map; a model file's errors also get lines (:func:`critflow.model.load.describe_error`)."""
    problems = []
    for error in errors:
        path = field_path(error.get("loc", ())) or "(document)"
        problems.append(
            Problem(f"{where}: {path}" if where else path, validation_message(error, with_input))
        )
    return list(dict.fromkeys(problems))
