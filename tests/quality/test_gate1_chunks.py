"""Gate 1 on a bulk run validates in chunks of whole days (bounded memory) with the same verdicts
as one validation of the whole history: a key repeated across chunks still fails and holds the
table's days, a bad day is still found and held alone, and the recorded summary is the same."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.settings import Settings
from ingestion.app_db.batch import land_day
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import PartitionManifest, partition_file, write_partition
from ingestion.simulator.run import simulate
from quality import GateFailed, quarantine
from quality.pipeline_gates import day_chunks, gate_landed_batches

DAY = dt.date(2026, 3, 3)
DAYS = [DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)]


@pytest.fixture
def landed(stack: Settings) -> dict[str, list[dict]]:
    """Three simulated days landed by the real extractor, as a bulk run (history) sees them."""
    simulate(stack.app_db_url, DAYS[0], DAYS[-1], scale=0.1, progress=False)
    batches: dict[str, list[dict]] = {}
    for day in DAYS:
        for table, manifest in land_day(stack, day, "history").items():
            batches.setdefault(table, []).append(manifest)
    return batches


def bulk_summary(settings: Settings, run_id: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select suite, status, expectations, failed, rows_checked from ops.gate_runs "
            "where run_id = ? and ds is null order by suite",
            [run_id],
        ).fetchall()


def test_days_are_grouped_into_chunks_of_bounded_rows():
    def manifest(ds: str, rows: int) -> PartitionManifest:
        return PartitionManifest("shop", "web_events", ds, "r", "f", rows, 0, "", "", None, "")

    days = [manifest(f"2026-03-0{n}", rows) for n, rows in enumerate([400, 500, 300, 1200, 100], 1)]
    assert [[m.ds[-1] for m in chunk] for chunk in day_chunks(days, 1000)] == [["1", "2"], ["3"], ["4"], ["5"]]
    assert [len(chunk) for chunk in day_chunks(days, 10_000)] == [5]


def gx_stored_verdicts(run_id: str) -> dict[str, bool]:
    """Suite -> success of the validation results GX stored for its Data Docs in this run."""
    import json

    from quality.settings import gx_docs_dir

    verdicts = {}
    for path in (gx_docs_dir() / "validations").rglob("*.json"):
        if run_id in path.parts:
            stored = json.loads(path.read_text())
            suite = stored["suite_name"]
            verdicts[suite] = verdicts.get(suite, True) and stored["success"]
    return verdicts


def test_chunked_validation_records_the_same_verdicts_as_one_batch(stack, landed, monkeypatch):
    gate_landed_batches(stack, landed, "whole")
    monkeypatch.setenv("GATE1_CHUNK_ROWS", "1")  # every day its own chunk
    gate_landed_batches(stack, landed, "chunked")
    whole, chunked = bulk_summary(stack, "whole"), bulk_summary(stack, "chunked")
    assert chunked == whole
    # the snapshot table too: its days are one batch, checked per day where a check needs a day
    assert {suite for suite, *_ in whole} == {f"raw.{t}" for t in landed}
    assert all(status == "passed" for _, status, *_ in whole)
    # and GX's own results (the Data Docs pages) agree: a snapshot's keys repeat across its days,
    # which is no failure on the page of the batch that holds them all
    for run_id in ("whole", "chunked"):
        stored = gx_stored_verdicts(run_id)
        assert set(stored) == {f"raw.{t}" for t in landed}, run_id
        assert all(stored.values()), (run_id, stored)


def _reland_products(stack: Settings, landed: dict[str, list[dict]], index: int, change) -> None:
    """Re-land one day of the products snapshot with `change(table)` applied."""
    products = CONTRACTS["products"]
    table = pq.read_table(partition_file(stack.lake_raw_dir, PartitionManifest(**landed["products"][index])))
    manifest = write_partition(
        stack.lake_raw_dir, "shop", "products", DAYS[index], change(table).to_batches(), products.schema, "history"
    )
    landed["products"][index] = {**landed["products"][index], **vars(manifest)}


@pytest.mark.parametrize(
    ("change", "expectation"),
    [
        (
            # a product created after the day ended (the last day's end would still be after it)
            lambda t: t.set_column(
                t.schema.get_field_index("created_at"),
                "created_at",
                pa.array(
                    [dt.datetime.combine(DAYS[0], dt.time(23)) + dt.timedelta(hours=2)] * len(t),
                    t.schema.field("created_at").type,
                ),
            ),
            "expect_column_pair_values_a_to_be_greater_than_b(_snapshot_day_end,created_at)",
        ),
        # a key twice within the day (every day repeats the keys: only the day's own count)
        (lambda t: pa.concat_tables([t, t.slice(0, 1)]), "expect_compound_columns_to_be_unique"),
    ],
    ids=["created after the day", "key twice in a day"],
)
@pytest.mark.parametrize("chunk_rows", ["1000000000", "1"], ids=["one batch", "day chunks"])
def test_a_bad_snapshot_day_in_a_bulk_run_is_held_alone(stack, landed, monkeypatch, chunk_rows, change, expectation):
    monkeypatch.setenv("GATE1_CHUNK_ROWS", chunk_rows)
    _reland_products(stack, landed, 0, change)
    with pytest.raises(GateFailed, match="products") as failure:
        gate_landed_batches(stack, landed, "history")
    assert expectation in str(failure.value)
    held = sorted((e.table, e.ds) for e in quarantine.list_entries(stack, quarantine.HELD))
    assert held == [("products", str(DAYS[0]))]


@pytest.mark.parametrize("chunk_rows", ["1000000000", "1"], ids=["one batch", "day chunks"])
def test_an_event_landed_on_two_days_fails_the_bulk_run_and_holds_its_days(stack, landed, monkeypatch, chunk_rows):
    monkeypatch.setenv("GATE1_CHUNK_ROWS", chunk_rows)
    events = CONTRACTS["web_events"]
    first = pq.read_table(partition_file(stack.lake_raw_dir, PartitionManifest(**landed["web_events"][0])))
    second = pq.read_table(partition_file(stack.lake_raw_dir, PartitionManifest(**landed["web_events"][1])))
    # the second day re-lands one event of the first day under the same id (a watermark bug)
    ids = second.column("event_id").to_pylist()
    repeated = first.column("event_id")[0].as_py()
    second = second.set_column(0, "event_id", pa.array([repeated, *ids[1:]], pa.int64()))
    manifest = write_partition(
        stack.lake_raw_dir, "shop", "web_events", DAYS[1], second.to_batches(), events.schema, "history"
    )
    landed["web_events"][1] = {**landed["web_events"][1], **vars(manifest)}

    with pytest.raises(GateFailed, match="web_events") as failure:
        gate_landed_batches(stack, landed, "history")
    assert "expect_column_values_to_be_unique(event_id)" in str(failure.value)
    held = sorted((e.table, e.ds) for e in quarantine.list_entries(stack, quarantine.HELD))
    assert held == [("web_events", str(day)) for day in DAYS]


def test_validated_chunks_do_not_stay_in_memory_after_the_gate(stack, landed, monkeypatch):
    """GX caches every batch's DataFrame in its (process-wide) context: gate 1 drops them, so a
    backfill's chunks neither pile up during the gate nor stay resident under the load."""
    import gc
    import weakref

    import quality.pipeline_gates as pipeline_gates

    read = pipeline_gates.read_landed_batch
    frames: list[weakref.ref] = []

    def read_and_watch(paths, *args):
        frame = read(paths, *args)
        frames.append(weakref.ref(frame))
        return frame

    monkeypatch.setattr(pipeline_gates, "read_landed_batch", read_and_watch)
    monkeypatch.setenv("GATE1_CHUNK_ROWS", "1")
    gate_landed_batches(stack, landed, "watched")
    gc.collect()
    assert len(frames) >= len(DAYS)  # the bulk tables were read in several chunks
    assert [ref for ref in frames if ref() is not None] == []


def test_the_gx_context_does_not_outlive_the_gate(stack, landed):
    """GX makes every context it opens the process-wide current project, with what it computed
    about the last batch: after the gate the previous one is current again, so a one-process
    run (`make run`, the benchmark) does not carry gate 1's context under the load's memory."""
    import gc
    import weakref

    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.exceptions import DataContextRequiredError

    import quality.context

    def current():
        try:
            return project_manager.get_current_project()
        except DataContextRequiredError:
            return None

    opened: list[weakref.ref] = []
    get_context = quality.context.import_gx().get_context

    def get_and_watch(**kwargs):
        context = get_context(**kwargs)
        opened.append(weakref.ref(context))
        return context

    before = current()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quality.context.import_gx(), "get_context", get_and_watch)
        gate_landed_batches(stack, landed, "released")
    gc.collect()
    assert opened, "the gate opened no GX context"
    assert current() is before
    assert [ref for ref in opened if ref() is not None] == []
