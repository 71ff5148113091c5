"""File-name helpers shared by the lake, the gates, quarantine, publishing and governance."""

from __future__ import annotations

_SAFE_PUNCTUATION = "-_."


def safe_file_name(name: str, *, ascii_only: bool = False) -> str:
    """`name` with every character other than a letter, a digit, `-`, `_` or `.` replaced by `_`.

    Airflow run ids contain ':' and '+', which are not portable in file and folder names. The
    result has as many characters as `name` (an empty name stays empty). By default a letter or
    digit is anything `str.isalnum` accepts, non-ASCII ones included (the lake's, quarantine's,
    publishing's and erasure's rule); `ascii_only=True` keeps only `A-Z`, `a-z` and `0-9` (the
    Great Expectations run names of quality.gates, which had that rule), so every caller's names
    are unchanged.
    """
    if ascii_only:
        return "".join(ch if (ch.isascii() and ch.isalnum()) or ch in _SAFE_PUNCTUATION else "_" for ch in name)
    return "".join(ch if ch.isalnum() or ch in _SAFE_PUNCTUATION else "_" for ch in name)
