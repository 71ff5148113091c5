"""Data-quality policies that more than one layer applies, each stated once."""

from __future__ import annotations

# The share of a batch's rows that may be bad while its good rows still load and the bad ones are
# quarantined row by row; above it the whole batch (a partner's file) is failed and quarantined:
# that many bad rows means the export itself is broken. Partner contracts default to it
# (ingestion.partner_files.contracts; PARTNER_FILES_MAX_BAD_ROW_RATIO overrides it at run time).
MAX_BAD_ROW_RATIO = 0.05
