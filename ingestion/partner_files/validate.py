"""Read one partner file against its contract: decode, check the header, type and check every row.

This module only judges bytes; it writes nothing. It returns a `CheckedFile`: either a file-level
fault (undecodable, wrong header, truncated, unreadable name ...) that rejects the whole file, or
the typed good rows plus one or more `RowError`s per bad row. Row numbers count data rows from 1
(the CSV header is not a row); `line` is the physical line where the record starts.

Rules that need a word of why:
- Encodings are tried in the contract's order (UTF-8 first, a BOM is dropped). Decoded text that
  contains control characters (NUL, other C0/C1 codes) is rejected: it means the bytes were not
  text in that encoding (UTF-16, a zip, latin-1 read as something else), and guessing would load
  garbage.
- A file whose last byte is not a line break is truncated: partners' exports end every record with
  a newline, and a file cut exactly at a field boundary would otherwise pass with a wrong value.
  A CSV that ends inside a quoted field and a JSON array without its closing bracket are
  truncated too. Truncation rejects the whole file: the missing tail cannot be quarantined.
- Values of PII columns are never copied into errors (reports travel to tickets and chats).
- Digits are ASCII digits: Python's `\\d`, `int()` and `strptime` also take other scripts' digits
  (full-width or Arabic-Indic digits in `SKU-00012`), which would load a second spelling of the
  same key. Patterns use [0-9]; numbers and dates must be ASCII.
- JSON is parsed with limits: nesting deeper than `max_json_depth` is a bad row (the parser would
  otherwise recurse until the interpreter gives up), a field given twice in one object is a bad
  row (the parser would keep the last silently), and NaN/Infinity are not JSON.
- Single-line text (every string column not marked `multiline`) may not hold line breaks or tabs,
  nor start like a spreadsheet formula (= + - @): such a value reaches CSV exports and opens as
  a formula in a spreadsheet.
- The business date in the name must be a real date, not after tomorrow, and not older than
  `max_age_days`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from ingestion import strict_json
from ingestion.partner_files.contracts import Column, PartnerContract
from ingestion.partner_files.limits import Limits

_DATE_IN_NAME = re.compile(r"(?<![0-9])([0-9]{4})-?([0-9]{2})-?([0-9]{2})(?![0-9])")
# C0 and C1 control characters except tab, line feed and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What a single-line value may not contain, and how a spreadsheet formula starts.
_LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]")
_FORMULA_START = ("=", "+", "-", "@")
# A JSON string (skipped whole) or a bracket: enough to measure nesting without recursion.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


@dataclass(frozen=True)
class RowError:
    row: int
    line: int | None
    column: str | None
    code: str  # fields | json | missing | type | range | allowed | pattern | length | future_date | duplicate_key
    message: str
    value: str | None = None  # the offending value, redacted for PII columns


@dataclass(frozen=True)
class FileError:
    code: str  # file_name | extension | empty | encoding | header | truncated | format
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckedFile:
    """The verdict on one file's content, before any policy is applied."""

    business_date: dt.date | None
    encoding: str | None
    rows_in: int
    header: list[str] | None = None  # CSV only: the header as sent
    good: pa.Table | None = None
    row_errors: list[RowError] = field(default_factory=list)
    bad_records: dict[int, str] = field(default_factory=dict)  # row -> raw text of the record
    file_error: FileError | None = None

    @property
    def bad_rows(self) -> list[int]:
        return sorted({e.row for e in self.row_errors})

    @property
    def rows_good(self) -> int:
        return self.good.num_rows if self.good is not None else 0

    def errors_as_dicts(self) -> list[dict]:
        return [asdict(e) for e in self.row_errors]


@dataclass
class _Record:
    row: int
    line: int | None
    raw: str
    values: dict[str, Any] | None  # None when the record itself could not be read
    error: RowError | None = None


def business_date_from_name(file_name: str) -> dt.date:
    """The business date a file name carries (`..._2026-03-02.csv` or `..._20260302.csv`)."""
    found = {m.groups() for m in _DATE_IN_NAME.finditer(file_name)}
    if len(found) != 1:
        what = "no date" if not found else f"{len(found)} different dates"
        raise ValueError(f"file name {file_name!r} has {what}; it must carry its business date as YYYY-MM-DD")
    year, month, day = (int(x) for x in found.pop())
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"file name {file_name!r}: {exc}") from None


def decode(data: bytes, encodings: tuple[str, ...]) -> tuple[str, str]:
    """Decode with the first accepted encoding that yields clean text; raise ValueError otherwise."""
    problems = []
    for encoding in encodings:
        try:
            text = data.decode("utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding)
        except UnicodeDecodeError as exc:
            problems.append(f"not {encoding}: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be decoded")
            continue
        bad = _CONTROL.search(text)
        if bad is not None:
            problems.append(
                f"as {encoding} the text contains control character U+{ord(bad.group()):04X} at character "
                f"{bad.start()} (not a text file in this encoding)"
            )
            continue
        return text, encoding
    raise ValueError("; ".join(problems))


def check_file(
    data: bytes, file_name: str, contract: PartnerContract, today: dt.date, *, limits: Limits | None = None
) -> CheckedFile:
    """Judge one file's bytes against the contract (see the module docstring for the rules)."""
    limits = limits or Limits()
    has_header = contract.format == "csv"

    def reject(business_date, encoding, content, code: str, message: str, **details: Any) -> CheckedFile:
        return _reject(business_date, encoding, content, code, message, header=has_header, **details)

    try:
        business_date = business_date_from_name(file_name)
    except ValueError as exc:
        return reject(None, None, data, "file_name", str(exc))
    if business_date > today + dt.timedelta(days=1):
        return reject(business_date, None, data, "file_name", f"business date {business_date} is in the future")
    if business_date < today - dt.timedelta(days=limits.max_age_days):
        return reject(
            business_date,
            None,
            data,
            "file_name",
            f"business date {business_date} is more than {limits.max_age_days} days old "
            "(PARTNER_FILES_MAX_AGE_DAYS): a wrong date in the name?",
        )
    ext = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if ext not in contract.extensions:
        allowed = ", ".join(contract.extensions)
        return reject(business_date, None, data, "extension", f"extension {ext or '(none)'!r} is not one of {allowed}")
    if not data.strip():
        return reject(business_date, None, data, "empty", "the file is empty (not even a header)")
    try:
        text, encoding = decode(data, contract.encodings)
    except ValueError as exc:
        accepted = ", ".join(contract.encodings)
        return reject(
            business_date,
            None,
            data,
            "encoding",
            f"not in an accepted encoding ({accepted}): {exc}",
            encodings=list(contract.encodings),
        )
    if not text.endswith(("\n", "\r")):
        return reject(
            business_date,
            encoding,
            text,
            "truncated",
            "the file does not end with a line break: its last record was cut off (truncated transfer?)",
            last_line_tail=text.rsplit("\n", 1)[-1][-60:],
        )
    if contract.format == "csv":
        return _check_csv(text, encoding, business_date, contract)
    return _check_json(text, encoding, business_date, contract, limits.max_json_depth)


def _reject(
    business_date: dt.date | None,
    encoding: str | None,
    content: bytes | str,
    code: str,
    message: str,
    *,
    header: bool,
    **details: Any,
) -> CheckedFile:
    return CheckedFile(
        business_date=business_date,
        encoding=encoding,
        rows_in=count_lines(content, header=header),
        file_error=FileError(code, message, details),
    )


def count_lines(content: bytes | str, *, header: bool) -> int:
    """Best-effort row count of a file that cannot be parsed: its non-blank lines, minus a CSV header."""
    # NUL bytes out first, so a UTF-16 file still counts roughly right.
    lines = content.splitlines() if isinstance(content, str) else content.replace(b"\x00", b"").split(b"\n")
    return max(sum(1 for line in lines if line.strip()) - (1 if header else 0), 0)


# --- CSV -------------------------------------------------------------------------------------


def _csv_records(text: str, contract: PartnerContract) -> tuple[list[str] | None, list[_Record], FileError | None]:
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(iter(lines), delimiter=contract.delimiter, quotechar=contract.quotechar, strict=True)
    header: list[str] | None = None
    records: list[_Record] = []
    row = 0
    previous_end = 0
    while True:
        start = previous_end + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            end = reader.line_num
            previous_end = end
            if end >= len(lines) and "unexpected end of data" in str(exc):
                return (
                    header,
                    records,
                    FileError(
                        "truncated",
                        f"the file ends inside a quoted field opened on line {start} "
                        "(truncated transfer or an unbalanced quote)",
                        {"line": start},
                    ),
                )
            if header is None:
                return None, [], FileError("header", f"the header line cannot be read: {exc}")
            row += 1
            raw = "".join(lines[start - 1 : end])
            err = RowError(row, start, None, "fields", f"malformed CSV: {exc}")
            records.append(_Record(row, start, raw, None, err))
            continue
        end = reader.line_num
        previous_end = end
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line: not a row
        if header is None:
            header = fields
            continue
        row += 1
        raw = "".join(lines[start - 1 : end])
        if len(fields) != len(header):
            err = RowError(row, start, None, "fields", f"expected {len(header)} fields, found {len(fields)}")
            records.append(_Record(row, start, raw, None, err))
            continue
        records.append(_Record(row, start, raw, dict(zip(header, fields, strict=True))))
    if header is None:
        return None, [], FileError("header", "the file has no header line")
    return header, records, None


def _check_csv(text: str, encoding: str, business_date: dt.date, contract: PartnerContract) -> CheckedFile:
    header, records, fault = _csv_records(text, contract)
    if fault is not None:
        # The records after an unclosed quote cannot be told apart: count the file's lines instead.
        return CheckedFile(business_date, encoding, count_lines(text, header=True), header=header, file_error=fault)
    header_error = _header_error(header or [], contract)
    if header_error is not None:
        return CheckedFile(business_date, encoding, len(records), header=header, file_error=header_error)
    return _check_records(records, encoding, business_date, contract, header=header)


def _header_error(header: list[str], contract: PartnerContract) -> FileError | None:
    expected = contract.column_names
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if not (missing or extra or duplicated):
        return None
    hints = {}
    for name in extra:
        match = next((c for c in missing if c.lower() == name.strip().lower()), None)
        if match:
            hints[name] = match
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(repr(c) for c in extra)}")
    if duplicated:
        parts.append(f"duplicated {', '.join(duplicated)}")
    if hints:
        parts.append("did you mean " + ", ".join(f"{k!r} -> {v}" for k, v in hints.items()))
    return FileError(
        "header",
        "header does not match the contract: " + "; ".join(parts),
        {"expected": expected, "found": header, "missing": missing, "unexpected": extra, "duplicated": duplicated},
    )


# --- JSON ------------------------------------------------------------------------------------


def _check_json(
    text: str, encoding: str, business_date: dt.date, contract: PartnerContract, max_depth: int
) -> CheckedFile:
    if text.lstrip().startswith("["):
        records, fault = _json_array_records(text, max_depth)
    else:
        records, fault = _json_lines_records(text, max_depth)
    if fault is not None:
        return CheckedFile(business_date, encoding, count_lines(text, header=False), file_error=fault)
    # Field names are the JSON "header": an unknown field anywhere, or a required field absent from
    # every record, is schema drift and rejects the file like a wrong CSV header.
    seen: dict[str, int] = {}
    for rec in records:
        for key in rec.values or {}:
            seen.setdefault(key, rec.row)
    expected = contract.column_names
    extra = [k for k in seen if k not in expected]
    never = [c.name for c in contract.columns if not c.nullable and c.name not in seen]
    if records and (extra or never):
        parts = []
        if extra:
            parts.append("unexpected field(s) " + ", ".join(f"{k!r} (first in row {seen[k]})" for k in extra))
        if never:
            parts.append("required field(s) missing from every record: " + ", ".join(never))
        return CheckedFile(
            business_date,
            encoding,
            len(records),
            file_error=FileError(
                "header",
                "fields do not match the contract: " + "; ".join(parts),
                {"expected": expected, "unexpected": extra, "missing": never},
            ),
        )
    return _check_records(records, encoding, business_date, contract)


def _json_depth_over(text: str, limit: int) -> int | None:
    """The depth at which `text` first nests deeper than `limit` ([ and { outside strings), or None."""
    if text.count("[") + text.count("{") <= limit:
        return None  # cannot be that deep: the common case costs two counts
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > limit:
                return depth
        elif char in "]}":
            depth -= 1
    return None


def _loads(text: str, max_depth: int) -> Any:
    """json.loads with the limits in the module docstring; ValueError says what is wrong."""
    if _json_depth_over(text, max_depth) is not None:
        raise ValueError(f"nested deeper than {max_depth} levels (PARTNER_FILES_MAX_JSON_DEPTH)")
    return strict_json.loads(text)


def _json_lines_records(text: str, max_depth: int) -> tuple[list[_Record], FileError | None]:
    records = []
    row = 0
    for line_no, line in enumerate(io.StringIO(text, newline="").readlines(), start=1):
        if not line.strip():
            continue
        row += 1
        try:
            value = _loads(line, max_depth)
        except ValueError as exc:  # JSONDecodeError, a duplicate field, too deep, a number too long
            err = RowError(row, line_no, None, "json", f"invalid JSON: {exc}")
            records.append(_Record(row, line_no, line, None, err))
            continue
        if not isinstance(value, dict):
            err = RowError(row, line_no, None, "json", f"expected a JSON object, found {type(value).__name__}")
            records.append(_Record(row, line_no, line, None, err))
            continue
        records.append(_Record(row, line_no, line, value))
    return records, None


def _json_array_records(text: str, max_depth: int) -> tuple[list[_Record], FileError | None]:
    try:
        values = _loads(text, max_depth)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return [], FileError("truncated", f"the JSON array ends early ({exc.msg}): truncated transfer?")
        return [], FileError("format", f"not valid JSON: {exc}")
    except ValueError as exc:
        return [], FileError("format", f"not valid JSON: {exc}")
    if not isinstance(values, list):
        return [], FileError("format", f"expected one JSON array of objects, found {type(values).__name__}")
    records = []
    for row, value in enumerate(values, start=1):
        raw = json.dumps(value, ensure_ascii=False) + "\n"
        if not isinstance(value, dict):
            err = RowError(row, None, None, "json", f"expected a JSON object, found {type(value).__name__}")
            records.append(_Record(row, None, raw, None, err))
            continue
        records.append(_Record(row, None, raw, value))
    return records, None


# --- rows ------------------------------------------------------------------------------------


def _check_records(
    records: list[_Record],
    encoding: str,
    business_date: dt.date,
    contract: PartnerContract,
    header: list[str] | None = None,
) -> CheckedFile:
    out = CheckedFile(business_date, encoding, len(records), header=header)
    columns: dict[str, list[Any]] = {c.name: [] for c in contract.columns}
    good_rows: list[int] = []
    first_row_of_key: dict[tuple, int] = {}
    for rec in records:
        errors = [rec.error] if rec.error else list(_check_values(rec, contract, business_date))
        typed = None
        if not errors:
            typed = _typed(rec, contract)
            key = tuple(typed[k] for k in contract.key)
            first = first_row_of_key.get(key)
            if first is not None:
                errors.append(
                    RowError(
                        rec.row,
                        rec.line,
                        ",".join(contract.key),
                        "duplicate_key",
                        f"key {dict(zip(contract.key, map(str, key), strict=True))} already in row {first}",
                    )
                )
            else:
                first_row_of_key[key] = rec.row
        if errors:
            out.row_errors.extend(errors)
            out.bad_records[rec.row] = rec.raw
            continue
        assert typed is not None
        for name, value in typed.items():
            columns[name].append(value)
        good_rows.append(rec.row)
    arrays = [pa.array(columns[c.name], type=c.arrow_type) for c in contract.columns]
    out.good = pa.Table.from_arrays(arrays, names=contract.column_names).append_column(
        "_file_row", pa.array(good_rows, type=pa.int64())
    )
    return out


def _check_values(rec: _Record, contract: PartnerContract, business_date: dt.date) -> Iterator[RowError]:
    assert rec.values is not None
    for col in contract.columns:
        raw = rec.values.get(col.name)
        shown = _shown(col, raw)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if not col.nullable:
                yield RowError(rec.row, rec.line, col.name, "missing", f"{col.name} is required", shown)
            continue
        try:
            value = _parse(col, raw, contract)
        except ValueError as exc:
            yield RowError(rec.row, rec.line, col.name, "type", f"{col.name}: {exc}", shown)
            continue
        yield from _constraint_errors(rec, col, value, shown, business_date)


def _constraint_errors(
    rec: _Record, col: Column, value: Any, shown: str | None, business_date: dt.date
) -> Iterator[RowError]:
    if col.type == "string" and not col.multiline:
        if _LINE_BREAKS.search(value):
            yield RowError(rec.row, rec.line, col.name, "control", f"{col.name} contains a line break or tab", shown)
            return
        if value.startswith(_FORMULA_START):
            yield RowError(
                rec.row,
                rec.line,
                col.name,
                "formula",
                f"{col.name} starts with {value[0]!r} like a spreadsheet formula (= + - @ are not accepted first)",
                shown,
            )
            return
    if col.max_length is not None and len(value) > col.max_length:
        # Before the pattern: a pattern need not run over a value that is too long anyway.
        yield RowError(
            rec.row, rec.line, col.name, "length", f"{col.name} longer than {col.max_length} characters", shown
        )
        return
    if col.min_value is not None and value < col.min_value:
        yield RowError(rec.row, rec.line, col.name, "range", f"{col.name} below the minimum {col.min_value}", shown)
    if col.max_value is not None and value > col.max_value:
        yield RowError(rec.row, rec.line, col.name, "range", f"{col.name} above the maximum {col.max_value}", shown)
    if col.allowed is not None and value not in col.allowed:
        yield RowError(rec.row, rec.line, col.name, "allowed", f"{col.name} is not an accepted value", shown)
    if col.pattern is not None and not re.fullmatch(col.pattern, value):
        yield RowError(rec.row, rec.line, col.name, "pattern", f"{col.name} does not match {col.pattern}", shown)
    if col.not_after_file_date and value > business_date:
        yield RowError(
            rec.row, rec.line, col.name, "future_date", f"{col.name} is after the file's date {business_date}", shown
        )


def _shown(col: Column, raw: Any) -> str | None:
    if raw is None:
        return None
    if col.classification == "pii":
        return f"<redacted {col.pii_kind or 'pii'}>"
    text = raw if isinstance(raw, str) else json.dumps(raw)
    text = text if len(text) <= 80 else text[:77] + "..."
    # Escaped, so a value cannot add lines to REPORT.md or the log.
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _parse(col: Column, raw: Any, contract: PartnerContract) -> Any:
    """One value of the file into its Python type; ValueError says what is wrong."""
    text_input = isinstance(raw, str)
    if col.type == "string":
        if not text_input:
            raise ValueError(f"expected a string, found {type(raw).__name__}")
        return raw
    if col.type == "integer":
        if isinstance(raw, bool) or not (isinstance(raw, int) or (text_input and _ascii_match(r"[+-]?[0-9]+", raw))):
            raise ValueError(f"expected a whole number, found {_brief(raw)}")
        return int(raw)
    if col.type == "decimal":
        return _parse_decimal(col, raw, contract)
    if col.type == "date":
        if not text_input:
            raise ValueError(f"expected a date string, found {type(raw).__name__}")
        if not raw.isascii():  # strptime takes any script's digits
            raise ValueError(f"expected a date like {dt.date(2026, 3, 2).strftime(contract.date_format)}")
        try:
            return dt.datetime.strptime(raw, contract.date_format).date()
        except ValueError:
            raise ValueError(f"expected a date like {dt.date(2026, 3, 2).strftime(contract.date_format)}") from None
    raise AssertionError(f"unknown column type {col.type}")


def _parse_decimal(col: Column, raw: Any, contract: PartnerContract) -> Decimal:
    if isinstance(raw, bool):
        raise ValueError("expected a number, found a boolean")
    if isinstance(raw, str):
        sep = contract.decimal_separator
        other = "." if sep == "," else ","
        if other in raw:
            raise ValueError(f"expected a number with decimal separator {sep!r} and no grouping, found {_brief(raw)}")
        text = raw.replace(sep, ".")
        if not _ascii_match(r"[+-]?[0-9]+(\.[0-9]+)?", text):
            raise ValueError(f"expected a number, found {_brief(raw)}")
    elif isinstance(raw, int | float):
        text = repr(raw)
    else:
        raise ValueError(f"expected a number, found {type(raw).__name__}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"expected a number, found {_brief(raw)}") from None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > col.scale:
        raise ValueError(f"more than {col.scale} decimal places in {_brief(raw)}")
    if not value.is_finite():
        raise ValueError(f"expected a number, found {_brief(raw)}")
    try:
        digits = len(value.quantize(Decimal(1).scaleb(-col.scale)).as_tuple().digits)
    except InvalidOperation:  # more digits than the decimal context holds
        digits = col.precision + 1
    if digits > col.precision:
        raise ValueError(f"more than {col.precision} digits in {_brief(raw)}")
    return value


def _ascii_match(pattern: str, text: str) -> bool:
    return text.isascii() and re.fullmatch(pattern, text) is not None


def _brief(raw: Any, limit: int = 40) -> str:
    """A value for a message: its repr, cut short (a hostile value may be megabytes long)."""
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _typed(rec: _Record, contract: PartnerContract) -> dict[str, Any]:
    assert rec.values is not None
    out = {}
    for col in contract.columns:
        raw = rec.values.get(col.name)
        empty = raw is None or (isinstance(raw, str) and raw.strip() == "")
        out[col.name] = None if empty else _parse(col, raw, contract)
    return out
