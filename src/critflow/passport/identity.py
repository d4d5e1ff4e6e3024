"""Battery identifiers as GS1 Digital Link URIs, and their QR codes.

``https://<resolver>/01/{GTIN-14}/21/{serial}`` (GS1 Digital Link URI syntax 1.x): the GTIN's
mod-10 check digit is verified and the serial (application identifier 21) must be 1-20
characters of the GS1 character set 82, percent-encoded in the URI where needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

DEFAULT_RESOLVER = "https://id.gs1.org"
CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
"""GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1)."""
_PATH = re.compile(r"^(?P<prefix>.*?)/01/(?P<gtin>[^/]+)/21/(?P<serial>[^/?#]+)/?$")


class IdentifierError(ValueError):
    """An identifier that is not a valid GS1 Digital Link; the message says what to fix."""


def gtin_check_digit(digits: str) -> int:
    """Check digit for the GTIN body ``digits`` (all but the last digit), mod 10."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def normalise_gtin(gtin: str) -> str:
    """A GTIN-8/12/13/14 as GTIN-14, its check digit verified."""
    text = str(gtin).strip()
    if not text.isdigit() or len(text) not in (8, 12, 13, 14):
        raise IdentifierError(
            f"GTIN '{gtin}' must be 8, 12, 13 or 14 digits (got {len(text)} characters)"
        )
    text = text.zfill(14)
    expected = gtin_check_digit(text[:-1])
    if int(text[-1]) != expected:
        raise IdentifierError(
            f"GTIN '{gtin}' has check digit {text[-1]}, but its digits give {expected}"
        )
    return text


def check_serial(serial: str) -> str:
    """A serial number (GS1 AI 21): 1-20 characters of character set 82."""
    if not 1 <= len(serial) <= 20:
        raise IdentifierError(f"serial '{serial}' has {len(serial)} characters; AI 21 allows 1-20")
    bad = sorted(set(serial) - CSET82)
    if bad:
        raise IdentifierError(
            f"serial '{serial}' contains {', '.join(repr(c) for c in bad)}, outside the GS1 "
            "character set 82 (letters, digits and !\"%&'()*+,-./:;<=>?_)"
        )
    return serial


@dataclass(frozen=True)
class DigitalLink:
    """A GS1 Digital Link identifier of one battery."""

    gtin: str
    serial: str
    resolver: str = DEFAULT_RESOLVER

    @classmethod
    def build(cls, gtin: str, serial: str, resolver: str = DEFAULT_RESOLVER) -> DigitalLink:
        return cls(normalise_gtin(gtin), check_serial(serial), resolver.rstrip("/"))

    @classmethod
    def parse(cls, uri: str) -> DigitalLink:
        """Read and check a Digital Link URI; raises :class:`IdentifierError` saying what is wrong."""
        parts = urlsplit(uri)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise IdentifierError(
                f"'{uri}' is not a web URI; write https://<resolver>/01/<GTIN>/21/<serial>"
            )
        match = _PATH.match(parts.path)
        if not match:
            raise IdentifierError(
                f"'{uri}' has no /01/<GTIN>/21/<serial> path (GS1 Digital Link for a serialised item)"
            )
        resolver = f"{parts.scheme}://{parts.netloc}{match['prefix']}"
        return cls.build(match["gtin"], unquote(match["serial"]), resolver)

    @property
    def uri(self) -> str:
        return f"{self.resolver}/01/{self.gtin}/21/{quote(self.serial, safe='')}"

    def __str__(self) -> str:
        return self.uri


def write_qr(uri: str, path: Path, scale: int = 8) -> Path:
    """QR code (ISO/IEC 18004, error correction M) of ``uri`` as PNG or SVG, by the file suffix."""
    import segno

    if path.suffix.lower() not in (".png", ".svg"):
        raise IdentifierError(f"'{path}' must end in .png or .svg")
    segno.make_qr(uri, error="m").save(str(path), scale=scale, border=4)
    return path
