"""The bad-input corpus for partner files: every case a hostile or broken delivery, with its verdict.

Each `Case` says what lands in the inbox (bytes under a name, or a special entry: a symlink, a
FIFO, a socket, a hard link, a folder, a sparse oversized file) and what the pipeline must make of
it: the outcome, the error code and a piece of the reason, and the row counts. The corpus is
generated here rather than committed because half of it cannot live in git (FIFOs, sockets,
links, over-long and undecodable names, a sparse 12 MiB file); everything is deterministic.

`BASELINE` is delivered and loaded first: days that hold rows, so the corpus can try to empty
them, resend their bytes, or replace them under the same name. `SENTINELS` are good files
dropped last: the run must still load them after everything before them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TODAY = dt.date(2026, 3, 5)  # the processing day the corpus run pretends it is
FIRST_DAY = dt.date(2026, 1, 5)
MAX_BYTES = 12 * 1024 * 1024  # PARTNER_FILES_MAX_BYTES for the corpus run
MAX_SECONDS = 2.5  # PARTNER_FILES_MAX_SECONDS for the corpus run
ORDERS_HEADER = "order_ref;order_date;sku;quantity;unit_price_eur;country_code;ship_to_city"
SECRET_MARKER = "WO-7777777"  # only in the pipeline-readable file the symlink points at


def day(n: int) -> dt.date:
    return FIRST_DAY + dt.timedelta(days=n)


def order_row(i: int, ds: dt.date, city: str = "Köln", **over: str) -> str:
    values = {
        "order_ref": f"WO-{1_000_000 + i}",
        "order_date": ds.isoformat(),
        "sku": f"SKU-{i % 200 + 1:05d}",
        "quantity": str(1 + i % 5),
        "unit_price_eur": f"{10 + i % 90},50",
        "country_code": "DE",
        "ship_to_city": city,
    }
    values.update(over)
    return ";".join(values.values())


def orders(ds: dt.date, n: int, bad: dict[int, str] | None = None, seed: int = 0, encoding: str = "cp1252") -> bytes:
    """A CSV of `n` order rows; `bad` replaces row numbers (1-based) with raw lines."""
    lines = [ORDERS_HEADER]
    for i in range(1, n + 1):
        lines.append((bad or {}).get(i, order_row(seed + i, ds)))
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def review(i: int, ds: dt.date, **over: object) -> dict:
    return {
        "review_id": f"RV-{10_000_000 + i}",
        "sku": f"SKU-{i % 200 + 1:05d}",
        "rating": 1 + i % 5,
        "review_date": ds.isoformat(),
        "reviewer_email": f"reviewer{i}@mail.example",
        "review_text": "Sehr gut verarbeitet, gerne wieder.",
        **over,
    }


def reviews(ds: dt.date, n: int, bad: dict[int, str] | None = None, seed: int = 0) -> bytes:
    """JSON lines of `n` reviews; `bad` replaces row numbers (1-based) with raw lines."""
    lines = [(bad or {}).get(i, json.dumps(review(seed + i, ds), ensure_ascii=False)) for i in range(1, n + 1)]
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Case:
    """One corpus entry and the verdict the pipeline must reach."""

    id: str
    partner: str  # the inbox folder ("" = the inbox root)
    name: str | bytes  # bytes for a name that is not valid UTF-8
    data: bytes | None = None  # None for special entries
    special: str | None = (
        None  # symlink | dangling_symlink | dir_symlink | fifo | socket | hard_link | directory | sparse
    )
    outcome: str = "quarantined"  # loaded | loaded_partial | quarantined | duplicate
    code: str | None = None  # file_error code, or a row error code for loaded_partial
    reason: str | None = None  # a piece of the one-line reason / error message
    rows_in: int | None = None
    rows_loaded: int | None = None
    notes: dict = field(default_factory=dict)

    @property
    def fs_name(self) -> str:
        return os.fsdecode(self.name) if isinstance(self.name, bytes) else self.name


def _o(n: int) -> str:
    return f"wholesale_orders_{day(n)}.csv"


def _r(n: int, ext: str = "jsonl") -> str:
    return f"product_reviews_{day(n)}.{ext}"


# Days the baseline loads: the corpus tries to empty, duplicate or replace them.
EMPTIED_ORDERS, EMPTIED_REVIEWS, SAME_NAME, RESENT = 0, 1, 2, 3
BASELINE: tuple[tuple[str, str, bytes], ...] = (
    ("wholesale_orders", _o(EMPTIED_ORDERS), orders(day(EMPTIED_ORDERS), 40)),
    ("product_reviews", _r(EMPTIED_REVIEWS), reviews(day(EMPTIED_REVIEWS), 30)),
    ("wholesale_orders", _o(SAME_NAME), orders(day(SAME_NAME), 20, seed=100)),
    ("wholesale_orders", _o(RESENT), orders(day(RESENT), 15, seed=200)),
)

_DUP = reviews(day(9), 12, seed=300)
_LONG = "wholesale_orders_" + str(day(10)) + "_" + "x" * 220 + ".csv"  # 252 bytes: fits, with no room to spare
_NESTED = "[" * 100_000
_SLOW_ROW = "x;x;x;x;x;XX;=x"  # seven errors per row: a file that takes long to judge
_INJECTION = order_row(7, day(30), city="=cmd|' /C calc'!A0")


def _bad_pct(ds: dt.date, n: int, bad: int, seed: int) -> bytes:
    rows = {i: order_row(seed + i, ds, quantity="zwei") for i in range(1, bad + 1)}
    return orders(ds, n, rows, seed=seed)


CASES: tuple[Case, ...] = (
    # --- encodings -------------------------------------------------------------------------
    Case("cp1252_orders", "wholesale_orders", _o(4), orders(day(4), 40), outcome="loaded", rows_in=40),
    Case(
        "utf8_bom_orders",
        "wholesale_orders",
        _o(5),
        b"\xef\xbb\xbf" + orders(day(5), 25, encoding="utf-8"),
        outcome="loaded",
        rows_in=25,
    ),
    Case(
        "utf16_orders",
        "wholesale_orders",
        _o(6),
        orders(day(6), 20).decode("cp1252").encode("utf-16"),
        code="encoding",
        reason="control character U+0000",
    ),
    Case(
        "utf16le_reviews_no_bom",
        "product_reviews",
        _r(6),
        reviews(day(6), 10).decode().encode("utf-16-le"),
        code="encoding",
        reason="U+0000",
    ),
    Case(
        "invalid_utf8_reviews",
        "product_reviews",
        _r(7),
        reviews(day(7), 10).replace(b"Sehr", b"S\xffhr", 1),
        code="encoding",
        reason="byte 0xff",
    ),
    Case(
        "cp1252_reviews",
        "product_reviews",
        _r(8),
        reviews(day(8), 10).decode().replace("Sehr", "Très").encode("cp1252"),
        code="encoding",
        reason="not utf-8",
    ),
    Case(
        "utf8_bom_reviews",
        "product_reviews",
        _r(11),
        b"\xef\xbb\xbf" + reviews(day(11), 10, seed=400),
        outcome="loaded",
        rows_in=10,
    ),
    # --- empty and header only -------------------------------------------------------------
    Case("empty_orders", "wholesale_orders", _o(12), b"", code="empty", reason="the file is empty"),
    Case("blank_lines_reviews", "product_reviews", _r(12), b"\n\n\r\n", code="empty", reason="empty"),
    Case(
        "header_only_replaces_loaded_day",
        "wholesale_orders",
        _o(EMPTIED_ORDERS),
        (ORDERS_HEADER + "\r\n").encode(),
        code="no_rows",
        reason=f"no data rows; day {day(EMPTIED_ORDERS)} already holds 40 rows",
        rows_in=0,
    ),
    Case(
        "empty_array_replaces_loaded_day",
        "product_reviews",
        _r(EMPTIED_REVIEWS, "json"),
        b"[]\n",
        code="no_rows",
        reason=f"no data rows; day {day(EMPTIED_REVIEWS)} already holds 30 rows",
        rows_in=0,
    ),
    Case(
        "header_only_new_day",
        "wholesale_orders",
        _o(13),
        (ORDERS_HEADER + "\n").encode(),
        outcome="loaded",
        rows_in=0,
        notes={"why": "nothing to replace: an empty day is recorded as empty"},
    ),
    # --- truncated -------------------------------------------------------------------------
    Case("truncated_orders", "wholesale_orders", _o(14), orders(day(14), 20)[:-9], code="truncated"),
    Case(
        "unbalanced_quote_orders",
        "wholesale_orders",
        _o(15),
        orders(day(15), 20, {20: order_row(20, day(15), city='"Köln')}),
        code="truncated",
        reason="ends inside a quoted field",
    ),
    Case("truncated_reviews", "product_reviews", _r(14), reviews(day(14), 10)[:-30], code="truncated"),
    Case(
        "truncated_array",
        "product_reviews",
        _r(15, "json"),
        (json.dumps([review(i, day(15)) for i in range(5)]).rstrip("]") + "\n").encode(),
        code="truncated",
    ),
    # --- binary and oversized --------------------------------------------------------------
    Case(
        "binary_orders",
        "wholesale_orders",
        _o(16),
        bytes(range(256)) * 4 + b"\n",
        code="encoding",
    ),
    Case("png_as_reviews", "product_reviews", _r(16), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n", code="encoding"),
    Case("oversized_orders", "wholesale_orders", _o(17), special="sparse", code="too_large", reason="not read"),
    Case(
        "slow_to_check",
        "wholesale_orders",
        _o(18),
        ((ORDERS_HEADER + "\n") + (_SLOW_ROW + "\n") * 600_000).encode(),
        code="time_limit",
        reason="took longer than 2.5s",
        rows_in=600_000,
    ),
    # --- duplicates and re-sends -----------------------------------------------------------
    Case("duplicate_first", "product_reviews", _r(9), _DUP, outcome="loaded", rows_in=12),
    Case(
        "duplicate_same_bytes_again",
        "product_reviews",
        f"product_reviews_{day(9)}_copy.jsonl",
        _DUP,
        outcome="duplicate",
        reason="same content as product_reviews/",
    ),
    Case(
        "resend_of_loaded_file",
        "wholesale_orders",
        f"wholesale_orders_{day(RESENT)}_again.csv",
        orders(day(RESENT), 15, seed=200),
        outcome="duplicate",
        reason="already loaded",
    ),
    Case(
        "same_name_new_content",
        "wholesale_orders",
        _o(SAME_NAME),
        orders(day(SAME_NAME), 22, seed=500),
        outcome="loaded",
        rows_in=22,
        notes={"supersedes": True},
    ),
    # --- names and dates -------------------------------------------------------------------
    Case("no_date_in_name", "wholesale_orders", "wholesale_orders_latest.csv", orders(day(19), 5), code="file_name"),
    Case(
        "two_dates_in_name",
        "wholesale_orders",
        f"wholesale_orders_{day(19)}_{day(20)}.csv",
        orders(day(19), 5, seed=2),
        code="file_name",
        reason="2 different dates",
    ),
    Case(
        "future_date",
        "wholesale_orders",
        f"wholesale_orders_{TODAY + dt.timedelta(days=10)}.csv",
        orders(TODAY, 5),
        code="file_name",
        reason="in the future",
    ),
    Case(
        "ancient_date",
        "wholesale_orders",
        "wholesale_orders_1999-12-31.csv",
        orders(dt.date(1999, 12, 31), 5),
        code="file_name",
        reason="days old",
    ),
    Case(
        "impossible_date",
        "wholesale_orders",
        "wholesale_orders_2026-02-30.csv",
        orders(day(20), 5),
        code="file_name",
        reason="day is out of range",
    ),
    Case(
        "fullwidth_date_in_name",
        "wholesale_orders",
        "wholesale_orders_\uff12\uff10\uff12\uff16-01-20.csv",
        orders(day(15), 5),
        code="file_name",
        reason="no date",
    ),
    Case(
        "path_like_name",
        "wholesale_orders",
        f"%2e%2e%2fetc%2fpasswd\\..\\..\\orders_{day(21)}.csv",
        orders(day(21), 8, seed=600),
        outcome="loaded",
        rows_in=8,
        notes={"why": "a backslash is an ordinary character here; nothing is written outside the lake"},
    ),
    Case(
        "dash_dot_name",
        "wholesale_orders",
        f"-rf ..{day(22)}.csv",
        orders(day(22), 6, seed=650),
        outcome="loaded",
        rows_in=6,
    ),
    Case(
        "over_long_name",
        "wholesale_orders",
        _LONG,
        orders(day(10), 10, seed=700),
        code="file_name",
        reason="252 bytes long",
        rows_in=10,
    ),
    Case(
        "control_chars_in_name",
        "wholesale_orders",
        f"wholesale_orders_{day(23)}\n\x1b[31m.csv",
        orders(day(23), 5),
        code="file_name",
        reason="control characters",
    ),
    Case(
        "undecodable_name",
        "wholesale_orders",
        f"wholesale_orders_{day(24)}_\xff\xfe.csv".encode("latin-1"),
        orders(day(24), 5),
        code="file_name",
        reason="not valid UTF-8",
    ),
    Case(
        "wrong_extension", "wholesale_orders", f"wholesale_orders_{day(25)}.txt", orders(day(25), 5), code="extension"
    ),
    Case("inbox_root_file", "", f"wholesale_orders_{day(26)}.csv", orders(day(26), 5), code="unknown_partner"),
    Case(
        "unknown_partner_folder",
        "acme_corp",
        f"wholesale_orders_{day(26)}.csv",
        orders(day(26), 5, seed=1),
        code="unknown_partner",
    ),
    # --- CSV content -----------------------------------------------------------------------
    Case(
        "csv_injection",
        "wholesale_orders",
        _o(30),
        orders(day(30), 40, {7: _INJECTION}),
        outcome="loaded_partial",
        code="formula",
        rows_in=40,
        rows_loaded=39,
    ),
    Case(
        "quotes_in_fields",
        "wholesale_orders",
        _o(31),
        orders(day(31), 10, {3: order_row(3, day(31), city='"Köln ""Süd"""'), 4: order_row(4, day(31), city='"A; B"')}),
        outcome="loaded",
        rows_in=10,
        notes={"cities": {'Köln "Süd"', "A; B"}},
    ),
    Case(
        "newline_in_field",
        "wholesale_orders",
        _o(32),
        orders(day(32), 40, {5: order_row(5, day(32), city='"Den\r\nHaag"')}),
        outcome="loaded_partial",
        code="control",
        rows_in=40,
        rows_loaded=39,
    ),
    Case(
        "bad_rows_4pct",
        "wholesale_orders",
        _o(33),
        _bad_pct(day(33), 50, 2, 800),
        outcome="loaded_partial",
        rows_loaded=48,
    ),
    Case(
        "bad_rows_5pct",
        "wholesale_orders",
        _o(34),
        _bad_pct(day(34), 100, 5, 900),
        outcome="loaded_partial",
        rows_loaded=95,
    ),
    Case(
        "bad_rows_6pct",
        "wholesale_orders",
        _o(35),
        _bad_pct(day(35), 100, 6, 1000),
        code="type",
        reason="6 of 100 rows are bad (6.0% > 5.0% limit)",
        rows_in=100,
    ),
    Case(
        "non_ascii_digits",
        "wholesale_orders",
        _o(36),
        orders(
            day(36),
            60,
            {
                2: order_row(2, day(36), sku="SKU-\uff10\uff10\uff10\uff11\uff12"),
                9: order_row(9, day(36), quantity="\u0661\u0662"),
            },
            encoding="utf-8",
        ),
        outcome="loaded_partial",
        rows_loaded=58,
        notes={"codes": {"pattern", "type"}},
    ),
    Case(
        "huge_number",
        "wholesale_orders",
        _o(37),
        orders(day(37), 40, {11: order_row(11, day(37), unit_price_eur="9" * 60 + ",00")}),
        outcome="loaded_partial",
        code="type",
        rows_loaded=39,
    ),
    Case(
        "giant_field",
        "wholesale_orders",
        _o(38),
        orders(day(38), 40, {12: order_row(12, day(38), city="Ü" * 200_000)}, encoding="utf-8"),
        outcome="loaded_partial",
        code="fields",
        reason="field larger than field limit",
        rows_loaded=39,
    ),
    Case(
        "wrong_header",
        "wholesale_orders",
        _o(39),
        orders(day(39), 10).replace(b";quantity;", b";qty;", 1),
        code="header",
        reason="missing quantity",
    ),
    # --- JSON content ----------------------------------------------------------------------
    Case(
        "deeply_nested_line",
        "product_reviews",
        _r(40),
        reviews(day(40), 30, {4: _NESTED}),
        outcome="loaded_partial",
        code="json",
        reason="nested deeper than 32 levels",
        rows_loaded=29,
    ),
    Case(
        "broken_json_line",
        "product_reviews",
        _r(41),
        reviews(day(41), 30, {9: '{"review_id": "RV-12345678", "sku": '}),
        outcome="loaded_partial",
        code="json",
        reason="invalid JSON",
        rows_loaded=29,
    ),
    Case(
        "nested_array_file",
        "product_reviews",
        _r(42, "json"),
        (_NESTED + "\n").encode(),
        code="format",
        reason="nested deeper than 32 levels",
    ),
    Case(
        "broken_array_file",
        "product_reviews",
        _r(43, "json"),
        b'[{"review_id": "RV-10000001",, }]\n',
        code="format",
        reason="not valid JSON",
    ),
    Case(
        "duplicate_json_keys",
        "product_reviews",
        _r(44),
        reviews(day(44), 30, {3: json.dumps(review(3, day(44)))[:-1] + ', "rating": 1}'}),
        outcome="loaded_partial",
        code="json",
        reason="'rating' appears twice",
        rows_loaded=29,
    ),
    Case(
        "json_line_not_object",
        "product_reviews",
        _r(45),
        reviews(day(45), 40, {2: "[1, 2]", 3: "null"}),
        outcome="loaded_partial",
        code="json",
        reason="expected a JSON object",
        rows_loaded=38,
    ),
    Case(
        "nan_and_huge_int",
        "product_reviews",
        _r(46),
        reviews(
            day(46), 40, {5: json.dumps(review(5, day(46)))[:-1] + ', "x": NaN}', 6: '{"rating": ' + "9" * 5000 + "}"}
        ),
        outcome="loaded_partial",
        code="json",
        rows_loaded=38,
        notes={"reasons": ("NaN is not a JSON number", "Exceeds the limit")},
    ),
    Case(
        "nested_value",
        "product_reviews",
        _r(47),
        reviews(day(47), 30, {8: json.dumps(review(8, day(47), rating={"stars": [5]}))}),
        outcome="loaded_partial",
        code="type",
        rows_loaded=29,
    ),
    Case(
        "extra_json_field",
        "product_reviews",
        _r(48),
        reviews(day(48), 10, {1: json.dumps(review(1, day(48), helpful_votes=3))}),
        code="header",
        reason="unexpected field(s) 'helpful_votes'",
    ),
    # --- not regular files -----------------------------------------------------------------
    Case("symlink_to_secret", "wholesale_orders", _o(50), special="symlink", code="symlink", reason="never followed"),
    Case("dangling_symlink", "wholesale_orders", _o(51), special="dangling_symlink", code="symlink"),
    Case("symlink_to_folder", "product_reviews", _r(51), special="dir_symlink", code="symlink"),
    Case("fifo", "wholesale_orders", _o(52), special="fifo", code="not_regular", reason="named pipe (FIFO)"),
    Case("socket", "product_reviews", _r(52), special="socket", code="not_regular", reason="a socket"),
    Case("hard_link_to_secret", "wholesale_orders", _o(53), special="hard_link", code="hard_link"),
    Case("folder_in_partner_folder", "product_reviews", f"reviews_{day(53)}", special="directory"),
    Case("top_level_symlink", "", "wholesale_orders_link", special="dir_symlink", code="symlink"),
)

SENTINELS: tuple[tuple[str, str, bytes], ...] = (
    ("wholesale_orders", _o(58), orders(day(58), 12, seed=5000)),
    ("product_reviews", _r(58), reviews(day(58), 9, seed=5000)),
)


def secret_file(root: Path) -> Path:
    """A file only the pipeline's user may read (0600), outside the inbox: what a link would steal."""
    path = root / "secrets" / "private_orders.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orders(day(50), 3, {1: order_row(1, day(50), order_ref=SECRET_MARKER)}))
    path.chmod(0o600)
    return path


def materialize(case: Case, inbox: Path, secrets: Path) -> Path:
    """Put the case into the inbox (bytes are written under a dot name and renamed, like a partner)."""
    folder = inbox / case.partner if case.partner else inbox
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(case.fs_name))))
    makers: dict[str, Callable[[], None]] = {
        "symlink": lambda: path.symlink_to(secrets),
        "dangling_symlink": lambda: path.symlink_to(secrets.parent / "gone.csv"),
        "dir_symlink": lambda: path.symlink_to(secrets.parent, target_is_directory=True),
        "fifo": lambda: os.mkfifo(path, 0o600),
        "socket": lambda: os.mknod(path, stat.S_IFSOCK | 0o600),
        "hard_link": lambda: os.link(secrets, path),
        "directory": lambda: (path.mkdir(), (path / "notes.csv").write_bytes(orders(day(53), 2))),
        "sparse": lambda: _sparse(path, MAX_BYTES + 1),
    }
    if case.special is not None:
        makers[case.special]()
        return path
    assert case.data is not None
    tmp = folder / ".upload.part"
    tmp.write_bytes(case.data)
    os.replace(tmp, path)
    return path


def _sparse(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)  # a file of that size without writing it: the pipeline must not read it
