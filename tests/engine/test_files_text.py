"""engine.files.decode_marked_or_utf8: the one reading of a text file's bytes that Send Mail's
message files, Execute SQL's statement files and sql-check share."""

from __future__ import annotations

import codecs

from dtsx.engine.files import decode_marked_or_utf8


def test_a_byte_order_mark_decides_and_bad_bytes_are_replaced() -> None:
    assert decode_marked_or_utf8(codecs.BOM_UTF8 + "Ünï".encode()) == "Ünï"
    assert decode_marked_or_utf8(codecs.BOM_UTF8 + b"a\xffb") == "a\ufffdb"  # never raises
    assert decode_marked_or_utf8("SELECT 1".encode("utf-16")) == "SELECT 1"
    assert decode_marked_or_utf8(codecs.BOM_UTF16_BE + "x".encode("utf-16-be")) == "x"


def test_without_a_mark_utf8_or_nothing_so_the_caller_picks_its_code_page() -> None:
    assert decode_marked_or_utf8("Привет".encode()) == "Привет"
    assert decode_marked_or_utf8("Привет".encode("cp1251")) is None
