"""Fail when a column looks personal but is not classified as PII.

Run in CI (`python -m governance check`, and the tests): every landed column's name is matched
against patterns of personal data (names, e-mail, phone, address, birth date); sample values,
when given, are matched against e-mail and phone shapes. A match on a column not tagged `pii`
is a finding: classify it in its source contract (or mark it public/internal deliberately by
renaming it, if it is a false positive).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from governance.classification import Classification

NAME_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"(^|_)e?-?mail(_address)?($|_)"),
    "name": re.compile(r"(^|_)(first|last|full|given|family|sur|middle|maiden)_?name($|_)|^name$"),
    "phone": re.compile(r"(^|_)(phone|mobile|msisdn|fax|telephone)(_number)?($|_)"),
    "address": re.compile(r"(^|_)(street|address|postcode|postal_code|zip_?code|house_number)($|_)"),
    "birth_date": re.compile(r"(^|_)(birth|dob|date_of_birth|birthday)($|_)"),
}
VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE),
    "phone": re.compile(r"^\+?\d[\d ()./-]{7,}\d$"),
}
# Names that only look personal: hashes and keys derived from personal data are pseudonyms.
PSEUDONYM_SUFFIXES = ("_hash", "_hashed", "_pseudonym", "_id", "_sha256")


@dataclass(frozen=True)
class Finding:
    table: str
    column: str
    kind: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} looks like PII ({self.kind}: {self.evidence}) but is not tagged pii"


def looks_personal(column: str) -> str | None:
    name = column.lower()
    if name.endswith(PSEUDONYM_SUFFIXES):
        return None
    return next((kind for kind, pattern in NAME_PATTERNS.items() if pattern.search(name)), None)


def value_kind(values: Iterable[object], threshold: float = 0.5) -> str | None:
    texts = [str(v) for v in values if isinstance(v, str) and v]
    if not texts:
        return None
    for kind, pattern in VALUE_PATTERNS.items():
        if sum(bool(pattern.match(t)) for t in texts) / len(texts) >= threshold:
            return kind
    return None


def untagged_pii(
    classification: Classification, samples: Mapping[str, Mapping[str, list]] | None = None
) -> list[Finding]:
    """Columns that look personal (by name, or by sample values) and are not classified pii."""
    findings = []
    for table, columns in classification.items():
        for column, tag in columns.items():
            if tag.get("classification") == "pii":
                continue
            kind = looks_personal(column)
            if kind:
                findings.append(Finding(table, column, kind, "column name"))
                continue
            values = (samples or {}).get(table, {}).get(column)
            kind = value_kind(values) if values else None
            if kind:
                findings.append(Finding(table, column, kind, "sample values"))
    return findings
