"""Decode an HR export: UTF-8 unless the operator names another encoding; never a guess.

A guess goes wrong silently: EUC-JP bytes decode as Shift_JIS, ISO-2022-JP is plain ASCII
to a UTF-8 decoder, and either way the names come out garbled with exit status 0. So a file
that is not UTF-8 (with or without a BOM) is refused with the option that reads it, and an
encoding is used only when asked for with `--encoding`.
"""

from __future__ import annotations

import codecs
from typing import Final

from edge.errors import EdgeError

ENCODINGS: Final = {
    "utf-8": "utf-8-sig",  # a BOM, as Excel's "CSV UTF-8" writes, is dropped either way
    "utf-8-sig": "utf-8-sig",
    "cp932": "cp932",  # Excel's "Shift_JIS" on Windows: Shift_JIS with NEC and IBM extensions
    "shift_jis": "shift_jis",
    "shift_jis_2004": "shift_jis_2004",
    "euc_jp": "euc_jp",
    "iso2022_jp": "iso2022_jp",
    "utf-16": "utf-16",
}
"""The encodings `--encoding` accepts, by Python's codec name (aliases such as sjis work)."""
_ISO_2022_JP_ESCAPES: Final = ("\x1b$B", "\x1b$@", "\x1b(J", "\x1b(I", "\x1b$(D")
_SAVE_AS: Final = 'or save it from the spreadsheet as "CSV UTF-8"'


class EncodingRefused(EdgeError, ValueError):
    """The file's encoding is not one the importer can be sure of."""


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Return the text and the codec used; raise EncodingRefused rather than guess."""
    if encoding is None:
        return _utf8(data), "utf-8"
    codec = _codec(encoding)
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as error:
        raise EncodingRefused(
            f"the file is not {codec}: {_where(data, error.start)} cannot be read; check "
            f"--encoding, {_SAVE_AS}"
        ) from None


def _utf8(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise EncodingRefused(f"the file is UTF-16; run again with --encoding utf-16, {_SAVE_AS}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise EncodingRefused(
            f"the file is not UTF-8 ({_where(data, error.start)} is not); Japanese exports are "
            "often Shift_JIS: if this one is, run again with --encoding cp932 (or euc_jp for "
            f"EUC-JP), {_SAVE_AS}"
        ) from None
    if any(escape in text for escape in _ISO_2022_JP_ESCAPES):
        raise EncodingRefused(
            "the file looks like ISO-2022-JP (JIS): if it is, run again with --encoding "
            f"iso2022_jp, {_SAVE_AS}"
        )
    return text


def _codec(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = ""
    if name not in ENCODINGS:
        choices = ", ".join(sorted(ENCODINGS))
        raise EncodingRefused(f"--encoding must be one of {choices}")
    return ENCODINGS[name]


def _where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"byte {offset + 1} on line {line}"
