"""Partner files: CSV/JSON files partners drop into `lake/inbox/<partner>/`, landed exactly once.

- `contracts.py`  what each partner promised (format, encodings, fields, types, key, PII classes)
- `validate.py`   judge a file's bytes against its contract (encoding, header, truncation, rows)
- `process.py`    the inbox run: checksum ledger, policy, lake landing, quarantine; warehouse load
- `inbox.py`      the inbox as untrusted ground: lstat listing, reading regular files only, safe names
- `limits.py`     size, time, name length, JSON depth and date-age limits (environment overrides)
- `sandbox.py`    the contract check in a worker process, killed past a file's time limit
- `ledger.py`     the checksum ledger (SQLite in the lake, mirrored to `ops.partner_file_ledger`)
- `quarantine.py` held files and rows: reason.json, REPORT.md, list and release
- `samples.py`    deterministic good and bad example files
- `__main__.py`   `python -m ingestion.partner_files list|process|release|dismiss|ledger|samples`

See README.md in this folder for the partner-facing rules and the policy for partly bad files.
"""
