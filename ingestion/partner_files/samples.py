"""Example partner files, good and bad, generated deterministically (tests and the `make run` demo).

`build(kind, day)` returns a `Sample`: the bytes a partner would send plus what was injected (how
many rows, which rows are bad). `write_sample` drops one into the inbox the way partners are asked
to: written under a dot name, then renamed, so the pipeline never sees half a file. `write_demo`
drops the `make run` demo set: a clean order file, a review file with one bad row, and an order
file with a wrong header that ends up in quarantine.

Every kind is listed in `KINDS`; the same kind and day always give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CITIES = {
    "DE": ("München", "Köln", "Düsseldorf", "Nürnberg"),
    "AT": ("Wien", "Graz", "Linz"),
    "FR": ("Besançon", "Orléans", "Nîmes"),
    "ES": ("Málaga", "Córdoba", "León"),
    "CH": ("Zürich", "Genève"),
    "SE": ("Malmö", "Göteborg"),
    "NL": ("Utrecht", "Den Haag"),
}
ORDERS_HEADER = ["order_ref", "order_date", "sku", "quantity", "unit_price_eur", "country_code", "ship_to_city"]
REVIEW_TEXTS = (
    "Très bon produit, livraison rapide.",
    "Sehr gut verarbeitet, gerne wieder.",
    "Muy buena relación calidad-precio.",
    "Does what it says. Would buy again.",
    "Farbe anders als auf dem Foto \u2013 trotzdem zufrieden.",  # an en dash: 0x96 in cp1252
    None,
)


@dataclass(frozen=True)
class Sample:
    partner: str
    file_name: str
    data: bytes
    rows: int  # data rows written (what a reader should count)
    bad_rows: tuple[int, ...] = ()  # 1-based data rows made bad on purpose
    expect: str = "loaded"  # loaded | loaded_partial | quarantined
    fault: str | None = None  # the file-level fault injected, if any
    notes: dict = field(default_factory=dict)


def _rng(seed: str) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test data, not secrets


def _order_rows(rng: random.Random, day: dt.date, n: int) -> list[list[str]]:
    rows: list[list[str]] = []
    order_no = rng.randint(100_000, 900_000)
    while len(rows) < n:
        order_no += rng.randint(1, 9)
        country = rng.choice(sorted(CITIES))
        city = rng.choice(CITIES[country])
        order_date = day - dt.timedelta(days=rng.choice((0, 0, 0, 1)))
        for product in rng.sample(range(1, 201), k=min(rng.randint(1, 3), n - len(rows))):
            cents = rng.randint(250, 60_000)
            rows.append(
                [
                    f"WO-{order_no:07d}",
                    order_date.isoformat(),
                    f"SKU-{product:05d}",
                    str(rng.randint(1, 48)),
                    f"{cents // 100},{cents % 100:02d}",  # decimal comma
                    country,
                    city,
                ]
            )
    return rows


# Ways to break one order row; each keeps the field count unless that is the point.
_ORDER_BREAKS: tuple[Callable[[list[str], dt.date], list[str]], ...] = (
    lambda r, d: [*r[:3], "zwei", *r[4:]],  # quantity not a number
    lambda r, d: [*r[:3], "0", *r[4:]],  # quantity below 1
    lambda r, d: [*r[:5], "XX", r[6]],  # unknown country
    lambda r, d: [*r[:4], r[4].replace(",", "."), *r[5:]],  # decimal point instead of comma
    lambda r, d: [r[0], (d + dt.timedelta(days=3)).isoformat(), *r[2:]],  # order after the file's date
    lambda r, d: [r[0], r[1], "", *r[3:]],  # missing SKU
    lambda r, d: r[:6],  # a field short
)


def _csv(rows: list[list[str]], header: list[str] = ORDERS_HEADER) -> str:
    # The reseller's ERP writes Windows line ends; values never contain ';' or quotes except when broken.
    return "".join(";".join(r) + "\r\n" for r in [header, *rows])


def _orders(day: dt.date, n: int, bad: int, seed: str) -> tuple[list[list[str]], tuple[int, ...]]:
    rng = _rng(seed)
    rows = _order_rows(rng, day, n)
    bad_rows = tuple(sorted(rng.sample(range(1, n + 1), k=bad)))
    for i, row_no in enumerate(bad_rows):
        rows[row_no - 1] = _ORDER_BREAKS[i % len(_ORDER_BREAKS)](rows[row_no - 1], day)
    return rows, bad_rows


def _review_rows(rng: random.Random, day: dt.date, n: int) -> list[dict]:
    first = rng.randint(10_000_000, 90_000_000)
    names = ("anna.schmidt", "jean.dupont", "lucia.garcia", "sven.berg", "mia.jansen", "tom.baker")
    return [
        {
            "review_id": f"RV-{first + i:08d}",
            "sku": f"SKU-{rng.randint(1, 200):05d}",
            "rating": rng.choice((5, 5, 4, 4, 3, 2, 1)),
            "review_date": (day - dt.timedelta(days=rng.choice((0, 0, 1)))).isoformat(),
            "reviewer_email": f"{rng.choice(names)}{rng.randint(1, 999)}@mail.example",
            "review_text": rng.choice(REVIEW_TEXTS),
        }
        for i in range(n)
    ]


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _orders_name(day: dt.date) -> str:
    return f"wholesale_orders_{day.isoformat()}.csv"


def _reviews_name(day: dt.date, ext: str = "jsonl") -> str:
    return f"product_reviews_{day.isoformat()}.{ext}"


def build(kind: str, day: dt.date) -> Sample:
    """One sample file of `kind` (see KINDS) for business date `day`."""
    if kind not in KINDS:
        raise KeyError(f"unknown sample kind {kind!r}; kinds: {', '.join(KINDS)}")
    return KINDS[kind](day)


def _orders_good(day: dt.date) -> Sample:
    rows, _ = _orders(day, 40, 0, f"orders:{day}")
    return Sample("wholesale_orders", _orders_name(day), _csv(rows).encode("cp1252"), 40, notes={"encoding": "cp1252"})


def _orders_good_utf8(day: dt.date) -> Sample:
    rows, _ = _orders(day, 25, 0, f"orders-utf8:{day}")
    return Sample("wholesale_orders", _orders_name(day), _csv(rows).encode("utf-8"), 25, notes={"encoding": "utf-8"})


def _orders_partly_bad_under(day: dt.date) -> Sample:
    rows, bad = _orders(day, 60, 2, f"orders-under:{day}")  # 3.3% <= 5%
    return Sample("wholesale_orders", _orders_name(day), _csv(rows).encode("cp1252"), 60, bad, "loaded_partial")


def _orders_partly_bad_over(day: dt.date) -> Sample:
    rows, bad = _orders(day, 40, 6, f"orders-over:{day}")  # 15% > 5%
    return Sample("wholesale_orders", _orders_name(day), _csv(rows).encode("cp1252"), 40, bad, "quarantined")


def _orders_duplicate_key(day: dt.date) -> Sample:
    rows, _ = _orders(day, 30, 0, f"orders-dupkey:{day}")
    rows.append(list(rows[4]))  # the same order line twice: row 31 repeats row 5
    return Sample("wholesale_orders", _orders_name(day), _csv(rows).encode("cp1252"), 31, (31,), "loaded_partial")


def _orders_wrong_header(day: dt.date) -> Sample:
    rows, _ = _orders(day, 20, 0, f"orders-header:{day}")
    header = [("qty" if c == "quantity" else c) for c in ORDERS_HEADER]
    data = _csv(rows, header).encode("cp1252")
    return Sample("wholesale_orders", _orders_name(day), data, 20, expect="quarantined", fault="header")


def _orders_extra_column(day: dt.date) -> Sample:
    rows, _ = _orders(day, 20, 0, f"orders-extra:{day}")
    data = _csv([[*r, "x"] for r in rows], [*ORDERS_HEADER, "discount_pct"]).encode("cp1252")
    return Sample("wholesale_orders", _orders_name(day), data, 20, expect="quarantined", fault="header")


def _orders_truncated(day: dt.date) -> Sample:
    full = _orders_good(day).data
    cut = full[: full.rstrip(b"\r\n").rfind(b";") - 3]  # mid-way through the last row's price
    return Sample("wholesale_orders", _orders_name(day), cut, 40, expect="quarantined", fault="truncated")


def _orders_unbalanced_quote(day: dt.date) -> Sample:
    rows, _ = _orders(day, 20, 0, f"orders-quote:{day}")
    rows[-1][6] = '"' + rows[-1][6]  # a quoted field that never closes
    data = _csv(rows).encode("cp1252")
    return Sample("wholesale_orders", _orders_name(day), data, 20, expect="quarantined", fault="truncated")


def _orders_utf16(day: dt.date) -> Sample:
    rows, _ = _orders(day, 20, 0, f"orders-utf16:{day}")
    data = _csv(rows).encode("utf-16")
    return Sample("wholesale_orders", _orders_name(day), data, 20, expect="quarantined", fault="encoding")


def _orders_no_date(day: dt.date) -> Sample:
    rows, _ = _orders(day, 10, 0, f"orders-nodate:{day}")
    data = _csv(rows).encode("cp1252")
    return Sample("wholesale_orders", "wholesale_orders_latest.csv", data, 10, expect="quarantined", fault="file_name")


def _reviews_good(day: dt.date) -> Sample:
    rows = _review_rows(_rng(f"reviews:{day}"), day, 30)
    return Sample("product_reviews", _reviews_name(day), _jsonl(rows).encode("utf-8"), 30)


def _reviews_array(day: dt.date) -> Sample:
    rows = _review_rows(_rng(f"reviews-array:{day}"), day, 12)
    data = (json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    return Sample("product_reviews", _reviews_name(day, "json"), data, 12)


def _reviews_bad_rating(day: dt.date) -> Sample:
    rows = _review_rows(_rng(f"reviews-rating:{day}"), day, 30)
    rows[6]["rating"] = 7  # row 7: out of 1..5
    return Sample("product_reviews", _reviews_name(day), _jsonl(rows).encode("utf-8"), 30, (7,), "loaded_partial")


def _reviews_cp1252(day: dt.date) -> Sample:
    rows = _review_rows(_rng(f"reviews-cp1252:{day}"), day, 10)
    rows[0]["review_text"] = "Très bon produit"  # é as one cp1252 byte: not UTF-8
    data = _jsonl(rows).encode("cp1252", errors="replace")
    return Sample("product_reviews", _reviews_name(day), data, 10, expect="quarantined", fault="encoding")


def _reviews_truncated(day: dt.date) -> Sample:
    full = _reviews_good(day).data
    return Sample("product_reviews", _reviews_name(day), full[:-25], 30, expect="quarantined", fault="truncated")


def _reviews_drift(day: dt.date) -> Sample:
    rows = _review_rows(_rng(f"reviews-drift:{day}"), day, 10)
    for r in rows:
        r["stars"] = r.pop("rating")  # renamed field
    data = _jsonl(rows).encode("utf-8")
    return Sample("product_reviews", _reviews_name(day), data, 10, expect="quarantined", fault="header")


KINDS: dict[str, Callable[[dt.date], Sample]] = {
    "orders_good": _orders_good,
    "orders_good_utf8": _orders_good_utf8,
    "orders_partly_bad_under": _orders_partly_bad_under,
    "orders_partly_bad_over": _orders_partly_bad_over,
    "orders_duplicate_key": _orders_duplicate_key,
    "orders_wrong_header": _orders_wrong_header,
    "orders_extra_column": _orders_extra_column,
    "orders_truncated": _orders_truncated,
    "orders_unbalanced_quote": _orders_unbalanced_quote,
    "orders_utf16": _orders_utf16,
    "orders_no_date": _orders_no_date,
    "reviews_good": _reviews_good,
    "reviews_array": _reviews_array,
    "reviews_bad_rating": _reviews_bad_rating,
    "reviews_cp1252": _reviews_cp1252,
    "reviews_truncated": _reviews_truncated,
    "reviews_drift": _reviews_drift,
}


def drop(inbox: Path, partner: str, file_name: str, data: bytes) -> Path:
    """Deliver bytes the way partners are asked to: a dot name first, then an atomic rename."""
    folder = inbox / partner
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{file_name}.part"
    tmp.write_bytes(data)
    final = folder / file_name
    os.replace(tmp, final)
    return final


def write_sample(inbox: Path, kind: str, day: dt.date, file_name: str | None = None) -> Path:
    sample = build(kind, day)
    return drop(inbox, sample.partner, file_name or sample.file_name, sample.data)


DEMO = (("orders_good", 0), ("reviews_bad_rating", 0), ("orders_wrong_header", 1))


def write_demo(inbox: Path, day: dt.date) -> list[Path]:
    """The demo drop: clean orders and reviews (one bad row) for `day`, a wrong-header file for the day before."""
    return [write_sample(inbox, kind, day - dt.timedelta(days=back)) for kind, back in DEMO]
