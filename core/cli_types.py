"""Argument types every command line of the stack shares (argparse `type=` functions).

A value that does not fit raises `argparse.ArgumentTypeError` with a sentence naming what was
typed and what is expected; argparse prints it as its one-line usage error (exit 2), so a bad
date or count never reaches the code as a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math


def iso_date(text: str) -> dt.date:
    """A calendar date, YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def positive_int(text: str) -> int:
    """A whole number above zero (days, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero (seconds, GiB)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    # `not > 0` also refuses nan; inf would turn a cap or a timeout into none at all
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number above 0")
    return value
