"""The quarantine: what was held back from the partner files, why, and how it goes back.

One folder per held file, `lake/quarantine/partner_files/<partner>/<day held>/<stem>-<sha12>/`,
whose path below `partner_files/` is the item's id. The folder name is built from the file name
but bounded (at most 80 characters of [A-Za-z0-9._-], then the checksum), so no name a partner
chooses can make it too long or climb out of its folder. It contains:
- the file exactly as received, under its own name (fix it here, then `release` it); a name the
  inbox refuses (too long, control characters, not UTF-8) is held under a safe name instead
  (`held_as` in reason.json); a file refused unread (a link, a FIFO, too large) has no copy,
  except a too-large file, which is moved here whole;
- `bad_rows.<ext>` when only some rows were held: the header and the bad records as sent;
- `reason.json`: machine-readable (partner, checksum, decision and policy, counts, per-row errors);
- `REPORT.md`: the same for a human, with what to do next.
A folder is written beside its final place and renamed in, so a reader never sees half of one.
`release` moves the (fixed) file back to the inbox and leaves `RELEASED.json` as the trail.

These folders are also read by the quality layer, which lists them with the batches gate 1 held
(`python -m quality quarantine list`) and mirrors both into `ops.quarantine` for the Data health
dashboard; this module stays the one that writes and acts on them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from ingestion.partner_files.contracts import SOURCE_NAME
from ingestion.partner_files.inbox import name_problem, safe_component, safe_extension
from ingestion.partner_files.ledger import Ledger
from ingestion.partner_files.limits import Limits

REPORT_ROW_LIMIT = 50  # REPORT.md lists this many row errors; reason.json lists them all

log = logging.getLogger(__name__)


def quarantine_root(settings: Settings) -> Path:
    return settings.quarantine_dir / SOURCE_NAME


def item_id(partner: str, day: dt.date, file_name: str, sha256: str) -> str:
    """`<partner>/<day>/<stem>-<sha12>`, every part a short, safe folder name."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    return f"{safe_component(partner, 60)}/{day}/{safe_component(stem)}-{sha256[:12]}"


def held_name(file_name: str, max_name_bytes: int = Limits.max_name_bytes) -> str:
    """The name a held file gets in its folder: its own, unless the inbox refuses that name."""
    if name_problem(file_name, max_name_bytes) is None and not file_name.startswith((".", "-")):
        return file_name
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    return safe_component(stem) + safe_extension(file_name)


@dataclass(frozen=True)
class QuarantineItem:
    id: str
    path: Path
    reason: dict
    state: str  # held | released | dismissed | superseded

    @property
    def summary(self) -> str:
        return self.reason.get("summary", "")


def write_item(
    settings: Settings,
    qid: str,
    reason: dict,
    original: bytes | None,
    bad_rows: tuple[str, bytes] | None,
) -> Path:
    """Write (or rewrite, on a rerun) one quarantine folder atomically.

    `original` is stored as `reason["held_as"]`; None for a file that was refused unread.
    """
    final = quarantine_root(settings) / qid
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if original is not None:
        (tmp / reason["held_as"]).write_bytes(original)
    if bad_rows is not None:
        (tmp / bad_rows[0]).write_bytes(bad_rows[1])
    (tmp / "reason.json").write_text(json.dumps(reason, indent=2, ensure_ascii=False, default=str) + "\n")
    (tmp / "REPORT.md").write_text(render_report(reason))
    if final.exists():
        old = final.parent / f".old-{final.name}"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    return final


def render_report(reason: dict) -> str:
    """REPORT.md: what happened to the file, why, and what to do."""
    counts = reason["counts"]
    policy = reason["policy"]
    lines = [
        f"# Partner file held in quarantine: `{reason['file_name']}`",
        "",
        f"**{reason['summary']}**",
        "",
        "| | |",
        "| --- | --- |",
        f"| partner | `{reason['partner']}` |",
        f"| file | `{reason['file_name']}` ({reason['bytes']} bytes) |",
        f"| sha256 | `{reason['sha256']}` |",
        f"| received | {reason['received_at']} (run `{reason['run_id']}`) |",
        f"| business date | {reason.get('business_date') or 'unknown'} |",
        f"| encoding | {reason.get('encoding') or 'not decodable'} |",
        f"| decision | `{reason['decision']}` |",
        f"| rows in / loaded / quarantined | {counts['rows_in']} / {counts['rows_loaded']} / "
        f"{counts['rows_quarantined']} |",
        f"| policy | {_policy_text(policy)} |",
        "",
    ]
    file_error = reason.get("file_error")
    if file_error:
        lines += ["## Why the whole file was held", "", f"`{file_error['code']}`: {file_error['message']}", ""]
        details = {k: v for k, v in file_error.get("details", {}).items() if v}
        if details:
            lines += ["```json", json.dumps(details, indent=2, ensure_ascii=False), "```", ""]
    errors = reason.get("row_errors") or []
    if errors:
        by_kind = Counter((e["column"] or "(record)", e["code"]) for e in errors)
        lines += ["## Row errors by column", "", "| column | problem | rows |", "| --- | --- | --- |"]
        lines += [f"| {col} | {code} | {n} |" for (col, code), n in by_kind.most_common()]
        lines += ["", f"## Row errors (first {min(len(errors), REPORT_ROW_LIMIT)} of {len(errors)})", ""]
        lines += ["| row | line | column | problem | value |", "| --- | --- | --- | --- | --- |"]
        for e in errors[:REPORT_ROW_LIMIT]:
            value = "" if e.get("value") is None else f"`{e['value']}`"
            lines.append(f"| {e['row']} | {e.get('line') or ''} | {e['column'] or ''} | {e['message']} | {value} |")
        lines.append("")
    lines += [
        "## What to do",
        "",
        f"1. Fix `{reason.get('held_as') or reason['file_name']}` in this folder (or get a corrected file from "
        f"the partner: "
        f"{reason.get('partner_owner') or 'see the contract'}).",
        f"2. `python -m ingestion.partner_files release {reason['id']}` moves it back to the inbox; the next run "
        "processes it like a new delivery and, if it loads, it replaces the day's rows.",
        "",
        "Row numbers count data rows from 1 (the CSV header is not a row); `line` is the line in the file. "
        "Values of PII columns are redacted here; the file itself is the original.",
    ]
    if reason.get("archive_path"):
        lines.append(f"An unchanged copy of the file as received is kept at `{reason['archive_path']}`.")
    return "\n".join(lines) + "\n"


def _policy_text(policy: dict) -> str:
    if policy.get("max_bad_row_ratio") is None:
        return "not applicable (the file was refused without being read)"
    return (
        f"good rows are loaded when bad rows are at most {policy['max_bad_row_ratio']:.1%} of the file; "
        f"{_ratio_text(policy)}"
    )


def _ratio_text(policy: dict) -> str:
    ratio = policy.get("bad_row_ratio")
    return "not applicable (file-level fault)" if ratio is None else f"this file: {ratio:.1%} bad"


def items(settings: Settings, ledger: Ledger | None = None, include_closed: bool = False) -> list[QuarantineItem]:
    """Every quarantine folder, newest first; by default only those still held."""
    root = quarantine_root(settings)
    out = []
    for reason_file in sorted(root.glob("*/*/*/reason.json")):
        folder = reason_file.parent
        if folder.name.startswith("."):
            continue
        try:
            reason = json.loads(reason_file.read_text())
        except (OSError, ValueError) as error:
            # One unreadable folder (edited by hand) must not hide the others, nor fail a sync.
            log.warning("%s cannot be read, skipped: %s", reason_file, error)
            continue
        state = "held"
        if (folder / "RELEASED.json").exists():
            state = "released"
        elif (folder / "DISMISSED.json").exists():
            state = "dismissed"
        elif ledger is not None:
            entry = ledger.get(reason["sha256"])
            if entry is not None and entry.status == "superseded":
                state = "superseded"
        if state == "held" or include_closed:
            out.append(QuarantineItem(folder.relative_to(root).as_posix(), folder, reason, state))
    return sorted(out, key=lambda i: i.reason.get("quarantined_at", ""), reverse=True)


def find(settings: Settings, ref: str) -> QuarantineItem:
    """An item by its id, or by a unique prefix of its checksum or folder name."""
    candidates = items(settings, include_closed=True)
    exact = [i for i in candidates if i.id == ref.strip("/")]
    if exact:
        return exact[0]
    matches = [
        i
        for i in candidates
        if len(ref) >= 6 and (i.reason["sha256"].startswith(ref) or i.path.name.startswith(ref) or ref in i.id)
    ]
    if len(matches) != 1:
        known = ", ".join(i.id for i in candidates[:10]) or "none"
        what = "no quarantine item" if not matches else f"{len(matches)} items"
        raise LookupError(f"{what} matches {ref!r}; ids look like <partner>/<day>/<file>-<sha12> (held: {known})")
    return matches[0]


def release(
    settings: Settings,
    ledger: Ledger,
    ref: str,
    *,
    inbox: Path,
    to_partner: str | None = None,
    force: bool = False,
) -> Path:
    """Move a held (and presumably fixed) file back to the inbox; returns its path there.

    The ledger entry of the content that was held is marked `released` first, so that even
    unchanged bytes are processed again (e.g. after the contract was corrected); the file then
    appears in the inbox by an atomic rename, as partners are asked to deliver.
    """
    item = find(settings, ref)
    if item.state != "held":
        raise RuntimeError(f"{item.id} is {item.state}, not held: nothing to release")
    reason = item.reason
    name = reason.get("held_as") or reason["file_name"]
    source = item.path / name
    if not source.is_file() or source.is_symlink():
        raise FileNotFoundError(f"{source} is missing: put the fixed file there under the name {name!r}")
    entry = ledger.get(reason["sha256"])
    if entry is not None and entry.ds and not force:
        later = [
            e for e in ledger.later_versions(entry.partner, entry.ds, entry.received_at) if e.sha256 != entry.sha256
        ]
        if later:
            raise RuntimeError(
                f"a later file for {entry.partner} {entry.ds} is already loaded ({later[-1].file_name}); releasing "
                "this one would replace its rows. Use --force if that is what you want."
            )
    partner = to_partner or reason["partner"]
    target_dir = inbox / partner
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / name
    if target.exists():
        raise FileExistsError(f"{target} already exists in the inbox; wait for it to be processed")
    ledger.mark_released(reason["sha256"])
    data = source.read_bytes()
    staging = target_dir / f".releasing-{reason['sha256'][:12]}"  # dot files are ignored until renamed
    staging.write_bytes(data)
    os.rename(staging, target)
    released_sha = hashlib.sha256(data).hexdigest()
    record = {
        "released_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "to": str(target),
        "sha256_released": released_sha,
        "changed": released_sha != reason["sha256"],
    }
    (item.path / "RELEASED.json").write_text(json.dumps(record, indent=2) + "\n")
    source.unlink()
    return target


def dismiss(settings: Settings, ref: str, note: str) -> QuarantineItem:
    """Close an item without releasing it (e.g. the partner confirmed the rows are void)."""
    item = find(settings, ref)
    if item.state != "held":
        raise RuntimeError(f"{item.id} is {item.state}, not held")
    record = {"dismissed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "note": note}
    (item.path / "DISMISSED.json").write_text(json.dumps(record, indent=2) + "\n")
    return item
