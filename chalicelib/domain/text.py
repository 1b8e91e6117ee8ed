"""Text hygiene: which characters identifiers, names and free text may hold, and how a value is made safe for a
single-line context (an email header). Pure.

Control characters are Unicode category Cc (C0, DEL, C1: CR, LF, NUL, ESC, NEL ...) plus the line and paragraph
separators U+2028/U+2029, which some mail and log readers treat as line breaks too. Identifiers and names hold none;
free text (comments, notes) may hold line feeds, nothing else.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = "\u2028\u2029"
#: Every control character a single-line value refuses (Cc is exactly C0, DEL and C1).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The same without the line feed: what free text refuses.
_CONTROL_BUT_LF = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_RUNS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r" {2,}")

LINE_MESSAGE = "must not contain control characters (line breaks, tabs, NUL ...)"
TEXT_MESSAGE = "must not contain control characters other than line breaks (\\n)"


def is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _SEPARATORS


def has_control(value: str, *, allow_line_feed: bool = False) -> bool:
    """Whether `value` holds a control character (a line feed counts unless `allow_line_feed`)."""
    return (_CONTROL_BUT_LF if allow_line_feed else _CONTROL).search(value) is not None


def single_line(value: str) -> str:
    """`value` with every run of control characters made one space: safe for a header or a one-line field."""
    return _RUNS.sub(" ", value)


def clean_line(value: str) -> str:
    """A shop's free-text value (a product or person name, an address line) for a one-line field: control
    characters become spaces, runs of spaces one, the ends trimmed."""
    return _SPACES.sub(" ", single_line(value)).strip() if has_control(value) else value
