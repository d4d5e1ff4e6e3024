"""Organisations and the identifiers an administrator registered to them.

A battery passport is filed under its GS1 Digital Link, whose GTIN belongs to whoever holds the
GS1 Company Prefix it starts with (GS1 General Specifications: a GTIN-13 is company prefix +
item reference + check digit; a GTIN-14 puts an indicator digit in front; GTIN-12 and GTIN-8
are GTIN-13 space numbers with leading zeros). The registry therefore lets a key create a battery
passport only when the GTIN, without its indicator digit, starts with one of its organisation's
registered prefixes, and only when the passport's ``responsible_operator.identifier`` is one of
its organisation's registered economic-operator identifiers. Nobody can file a passport under
another manufacturer's GTIN, so the QR page of a battery shows the manufacturer's content.

Prefixes are registered by an administrator (``critflow keys org`` or the admin API) and do not
overlap: a prefix that starts another organisation's prefix, or starts with one, is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from critflow.errors import CritflowError
from critflow.server.models import Organisation, OrganisationIdentifier

PREFIX = "gs1_company_prefix"
OPERATOR_ID = "operator_id"
_PREFIX = re.compile(r"^\d{4,12}$")
_OPERATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]{1,99}$")


class IdentifierTakenError(CritflowError):
    """A prefix or operator identifier that belongs to (or overlaps) another organisation's."""


@dataclass(frozen=True)
class Identity:
    """What an organisation may issue under."""

    organisation: str
    prefixes: tuple[str, ...]
    operator_ids: tuple[str, ...]


def organisation(session: Session, name: str, create: bool = False) -> Organisation:
    """The organisation called ``name`` (created when ``create``)."""
    found = session.scalar(select(Organisation).where(Organisation.name == name))
    if found is None:
        if not create:
            raise CritflowError(
                "--org",
                f"no organisation '{name}'",
                "Create a key for it first, or check the name.",
            )
        found = Organisation(name=name)
        session.add(found)
        session.flush()
    return found


def check_prefix(prefix: str) -> str:
    """A GS1 Company Prefix as digits (4-12), as it appears in the GTIN-13 space."""
    text = str(prefix).strip()
    if not _PREFIX.match(text):
        raise CritflowError(
            "--prefix",
            f"'{prefix}' is not a GS1 Company Prefix (4 to 12 digits)",
            "Give the prefix as in a GTIN-13 (a U.P.C. Company Prefix with a leading 0).",
        )
    return text


def check_operator_id(identifier: str) -> str:
    """An economic-operator identifier (EORI, VAT or national registration number)."""
    text = str(identifier).strip()
    if not _OPERATOR_ID.match(text):
        raise CritflowError(
            "--operator-id",
            f"'{identifier}' is not an operator identifier (2-100 letters, digits, . _ : / -)",
            "Give the identifier your passports carry in responsible_operator.identifier, "
            "e.g. an EORI number such as BE0123456789.",
        )
    return text


def register(
    session: Session,
    name: str,
    prefixes: list[str] | tuple[str, ...] = (),
    operator_ids: list[str] | tuple[str, ...] = (),
) -> Identity:
    """Register prefixes and operator identifiers to organisation ``name`` (created if new).

    Refuses (CritflowError, nothing stored) a prefix or identifier that belongs to another
    organisation, and a prefix that overlaps another organisation's prefix.
    """
    org = organisation(session, name, create=True)
    wanted = [(PREFIX, check_prefix(p)) for p in prefixes] + [
        (OPERATOR_ID, check_operator_id(i)) for i in operator_ids
    ]
    taken = session.execute(
        select(OrganisationIdentifier.kind, OrganisationIdentifier.value, Organisation.name).join(
            Organisation, Organisation.id == OrganisationIdentifier.organisation_id
        )
    ).all()
    for kind, value in wanted:
        for other_kind, other_value, owner in taken:
            if other_kind != kind:
                continue
            same = other_value == value
            overlap = kind == PREFIX and (
                value.startswith(other_value) or other_value.startswith(value)
            )
            if owner != name and (same or overlap):
                session.rollback()
                raise IdentifierTakenError(
                    "--prefix" if kind == PREFIX else "--operator-id",
                    f"'{value}' is registered to '{owner}'"
                    if same
                    else f"'{value}' overlaps prefix {other_value} of '{owner}'",
                    "A GS1 Company Prefix and an operator identifier belong to one organisation; "
                    "remove it from the other one first if it changed hands.",
                )
        if not any(k == kind and v == value for k, v, _ in taken):
            session.add(OrganisationIdentifier(organisation_id=org.id, kind=kind, value=value))
    try:
        session.commit()
    except IntegrityError:  # registered by someone else in the meantime
        session.rollback()
        raise IdentifierTakenError(
            "--prefix", "an identifier was registered concurrently", "Run the command again."
        ) from None
    return identity(session, name)


def unregister(session: Session, name: str, value: str) -> None:
    """Remove a prefix or operator identifier from organisation ``name``."""
    org = organisation(session, name)
    found = session.scalar(
        select(OrganisationIdentifier).where(
            OrganisationIdentifier.organisation_id == org.id,
            OrganisationIdentifier.value == str(value).strip(),
        )
    )
    if found is None:
        raise CritflowError("--remove", f"'{value}' is not registered to '{name}'", "")
    session.delete(found)
    session.commit()


def identity(session: Session, name: str | None) -> Identity:
    """The prefixes and operator identifiers registered to organisation ``name``."""
    rows = (
        session.execute(
            select(OrganisationIdentifier.kind, OrganisationIdentifier.value)
            .join(Organisation, Organisation.id == OrganisationIdentifier.organisation_id)
            .where(Organisation.name == name)
            .order_by(OrganisationIdentifier.value)
        ).all()
        if name
        else []
    )
    return Identity(
        organisation=name or "",
        prefixes=tuple(v for k, v in rows if k == PREFIX),
        operator_ids=tuple(v for k, v in rows if k == OPERATOR_ID),
    )


def everyone(session: Session) -> list[dict[str, Any]]:
    """Every organisation with its identifiers (for ``critflow keys orgs`` and the admin API)."""
    names = session.scalars(select(Organisation.name).order_by(Organisation.name)).all()
    result = []
    for name in names:
        found = identity(session, name)
        result.append(
            {
                "organisation": name,
                "gs1_company_prefixes": list(found.prefixes),
                "operator_ids": list(found.operator_ids),
            }
        )
    return result


def gtin_owned(gtin: str, prefixes: tuple[str, ...]) -> bool:
    """Whether GTIN-14 ``gtin`` (indicator digit first) lies under one of ``prefixes``."""
    return any(gtin[1:].startswith(p) for p in prefixes)


def operator_identifier(document: dict[str, Any]) -> str | None:
    """The ``responsible_operator.identifier`` of a battery passport document (None if absent)."""
    operator = document.get("data", {}).get("responsible_operator")
    if isinstance(operator, dict):
        value = operator.get("identifier")
        return str(value) if value is not None else None
    return None
