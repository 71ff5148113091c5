"""Raw pages into the lake, unchanged: `lake/raw/marketing_api/<endpoint>/ds=YYYY-MM-DD/`.

Each page is one file, the body byte for byte as the API sent it
(`part-<run_id>-page-00001.json`, ...). Pages are staged in a hidden folder while the day is
fetched and swapped in only when every page has arrived (the lake's atomic folder swap), so a
failure mid-way leaves the previous version of the day, never half of a new one.

Beside the pages: `_manifest.json` (the lake's PartitionManifest fields: total rows, bytes,
sha256 over the pages in order, a hash of the observed JSON schema), `_pages.json` (per page:
file, request, rows, bytes, sha256, attempts) and `_drift_report.json` (see `drift`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from core.files import safe_file_name
from ingestion.lake import MANIFEST, PartitionManifest, fsync_path, partition_dir, swap_in
from ingestion.marketing_api.client import Page
from ingestion.marketing_api.drift import DriftReport, observed_schema, observed_schema_hash

PAGES = "_pages.json"
DRIFT_REPORT = "_drift_report.json"


class RawPageStage:
    """The pages of one endpoint and day, written to a hidden folder until `commit()`."""

    def __init__(self, raw_dir: Path, source: str, endpoint: str, ds: dt.date, run_id: str):
        self.raw_dir, self.source, self.endpoint, self.ds, self.run_id = raw_dir, source, endpoint, ds, run_id
        self.final = partition_dir(raw_dir, source, endpoint, ds)
        self.safe_id = safe_file_name(run_id)
        self.tmp = self.final.parent / f".tmp-{self.safe_id}-{self.final.name}"
        self.final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        self.pages: list[dict] = []
        self.records: list[dict] = []
        self._digest = hashlib.sha256()
        self._bytes = 0

    def add(self, page: Page) -> None:
        name = f"part-{self.safe_id}-page-{page.number:05d}.json"
        (self.tmp / name).write_bytes(page.body)
        self._digest.update(page.body)
        self._bytes += len(page.body)
        self.records.extend(page.records)
        self.pages.append(
            {
                "file": name,
                "url": page.url,
                "rows": len(page.records),
                "bytes": len(page.body),
                "sha256": hashlib.sha256(page.body).hexdigest(),
                "attempts": page.attempts,
                "received_at": page.received_at,
            }
        )

    def commit(self, drift: DriftReport) -> PartitionManifest:
        """Write the manifests and swap the day in; the stage is spent afterwards."""
        manifest = PartitionManifest(
            source=self.source,
            table=self.endpoint,
            ds=str(self.ds),
            run_id=self.run_id,
            file=f"part-{self.safe_id}-page-*.json",
            row_count=len(self.records),
            bytes=self._bytes,
            sha256=self._digest.hexdigest(),
            schema_hash=observed_schema_hash(observed_schema(self.records)),
            watermark=None,
            landed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        (self.tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2))
        (self.tmp / PAGES).write_text(json.dumps(self.pages, indent=2))
        (self.tmp / DRIFT_REPORT).write_text(json.dumps(drift.to_dict(), indent=2))
        fsync_path(self.tmp)
        swap_in(self.tmp, self.final, self.safe_id)
        return manifest

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def page_files(raw_dir: Path, source: str, endpoint: str, ds: dt.date | str) -> list[Path]:
    """The landed pages of a day, in page order."""
    return sorted(partition_dir(raw_dir, source, endpoint, ds).glob("part-*-page-*.json"))
