"""Reading a CSV list of recipients for a bulk send: columns, bad rows and duplicates.

A marketer's test list or a support agent's resend list arrives as a spreadsheet export.
:func:`read_table` turns the file into a :class:`CsvTable` (header + raw rows), refusing
with a :class:`CsvImportError` whose message says what is wrong and what to do when the file
is empty, binary, too large, or in another encoding than UTF-8 (UTF-16 "Unicode text" from
Excel, Latin-1/Windows-1252 from older tools). :func:`guess_mapping` proposes which column
holds the address, which the name and which become ``[%KEY%]`` attributes;
:func:`apply_mapping` turns the rows into :class:`CsvRecipient` values and lists every bad
row with its line number and reason, and every address that occurs more than once with all
its line numbers. :func:`import_csv` does all three.

Nothing here is slow on a sensible file: the whole file is read at once (at most
:data:`MAX_FILE_BYTES`) and binary content is recognised from its bytes before any parsing,
so even 10 MB of random bytes are refused in milliseconds.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from netcore_desktop.core.validation import email_problem

log = logging.getLogger(__name__)

#: Larger files are refused: a recipient list of a few hundred thousand rows fits well below.
MAX_FILE_BYTES: Final = 50 * 1024 * 1024

#: A single CSV field longer than this means the file is not a recipient list.
MAX_FIELD_CHARS: Final = 128 * 1024

#: Delimiters the sniffer may choose from (comma, semicolon from European Excel, tab, pipe).
DELIMITERS: Final = ",;\t|"

#: How much of the file the delimiter sniffer and the binary check look at.
_SAMPLE_BYTES: Final = 64 * 1024

#: Header names (lower-cased, letters and digits only) that hold the address.
_EMAIL_HEADERS: Final = (
    "email",
    "emailaddress",
    "emailid",
    "mail",
    "mailaddress",
    "emailaddr",
    "recipientemail",
    "recipient",
    "to",
    "toemail",
    "address",
    "courriel",
    "correo",
    "correoelectronico",
)
#: Header names that hold the whole display name.
_NAME_HEADERS: Final = ("name", "fullname", "displayname", "recipientname", "contactname",
                        "contact", "customername", "customer")
_FIRST_NAME_HEADERS: Final = ("firstname", "givenname", "first", "forename")
_LAST_NAME_HEADERS: Final = ("lastname", "surname", "familyname", "last")

_KEY_RE: Final = re.compile(r"[^A-Za-z0-9_]+")


class CsvImportError(Exception):
    """The whole file cannot be used; the message says why and what to do.

    ``code`` is one of ``empty``, ``too_large``, ``binary``, ``encoding``, ``malformed``,
    ``no_header``, ``no_email_column``, ``bad_key``, ``unreadable``. For ``encoding``,
    ``suggested_encoding`` names the encoding the file most likely has, so a front end can
    offer to read it that way (``read_table(..., encoding=...)``).
    """

    def __init__(
        self, code: str, message: str, *, suggested_encoding: str | None = None,
        columns: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.suggested_encoding = suggested_encoding
        #: The columns found, when the problem is about columns.
        self.columns = tuple(columns)


@dataclass(frozen=True)
class CsvTable:
    """A CSV file as read: its header and its data rows with their line numbers."""

    header: tuple[str, ...]
    #: ``(line number of the row's first line, values)`` for every non-blank data row.
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    delimiter: str
    encoding: str
    #: Line number of the header row (1 unless blank lines came first).
    header_line: int = 1
    #: Whether the first row held data, not column names (then the header is "Column 1"…).
    headerless: bool = False

    @property
    def delimiter_name(self) -> str:
        """The delimiter in words, for the import dialog."""
        return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(
            self.delimiter, repr(self.delimiter)
        )


@dataclass(frozen=True)
class ColumnMapping:
    """Which column is what: indexes into :attr:`CsvTable.header`."""

    #: The address column (``None``: not chosen yet).
    email: int | None
    #: Columns joined with a space to make the display name (e.g. first and last name).
    name: tuple[int, ...] = ()
    #: Column index → attribute key (``[%KEY%]``) for the columns that become attributes.
    attributes: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CsvRecipient:
    """One good data row: an address, a name and the attribute values."""

    line: int
    email: str
    name: str
    attributes: Mapping[str, str]
    #: Line of the first row with the same address, when this row repeats it.
    duplicate_of: int | None = None


@dataclass(frozen=True)
class CsvProblem:
    """A data row that cannot be used, with the reason."""

    line: int
    message: str
    email: str = ""


@dataclass(frozen=True)
class Duplicate:
    """An address found on several lines."""

    email: str
    lines: tuple[int, ...]


@dataclass(frozen=True)
class CsvImport:
    """The result of importing a file: usable rows, bad rows, duplicates."""

    table: CsvTable
    mapping: ColumnMapping
    #: Every usable row, repeats included (each marked with ``duplicate_of``).
    rows: tuple[CsvRecipient, ...]
    problems: tuple[CsvProblem, ...]
    duplicates: tuple[Duplicate, ...]

    def recipients(self, *, skip_duplicates: bool = True) -> tuple[CsvRecipient, ...]:
        """The rows to send: without the repeats of an earlier address unless asked."""
        if not skip_duplicates:
            return self.rows
        return tuple(r for r in self.rows if r.duplicate_of is None)

    @property
    def attribute_keys(self) -> tuple[str, ...]:
        """The attribute keys, in column order."""
        return tuple(self.mapping.attributes[i] for i in sorted(self.mapping.attributes))

    def summary(self) -> str:
        """One sentence: how many rows are usable, bad and repeated."""
        repeats = sum(len(d.lines) - 1 for d in self.duplicates)
        parts = [f"{len(self.rows) - repeats} recipient(s) ready"]
        if self.problems:
            parts.append(f"{len(self.problems)} bad row(s) left out")
        if self.duplicates:
            parts.append(
                f"{len(self.duplicates)} address(es) appear more than once "
                f"({repeats} repeat row(s))"
            )
        return "; ".join(parts) + "."


# --- reading the bytes ---------------------------------------------------------------------

_SAVE_AS_UTF8: Final = (
    "In Excel use File → Save As → “CSV UTF-8 (Comma delimited)”; in LibreOffice choose "
    "“Text CSV” with the character set “Unicode (UTF-8)”. Then import the new file."
)


def _looks_utf16(sample: bytes) -> str | None:
    """``utf-16-le``/``utf-16-be`` when ``sample`` is UTF-16 text without a BOM."""
    if len(sample) < 4:
        return None
    even = sample[0::2]
    odd = sample[1::2]
    # ASCII text in UTF-16 has a NUL in every other byte.
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _control_ratio(text: str) -> float:
    """Share of characters that never appear in a text file (controls other than \\t\\r\\n)."""
    if not text:
        return 0.0
    bad = 0
    for ch in text:
        if ch in "\t\r\n":
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Co", "Cn"):
            bad += 1
    return bad / len(text)


def _line_of(data: bytes, position: int) -> int:
    return data.count(b"\n", 0, position) + 1


def _binary_error(name: str) -> CsvImportError:
    return CsvImportError(
        "binary",
        f"{name} is not a text file (it holds binary data, like a spreadsheet, archive or "
        "image). Export the list from your spreadsheet as CSV (“CSV UTF-8”) and import that "
        "file instead.",
    )


def decode_bytes(
    data: bytes, *, name: str = "The file", encoding: str | None = None
) -> tuple[str, str]:
    """The text of a CSV file and the encoding used; :class:`CsvImportError` when unusable.

    Without ``encoding`` only UTF-8 (with or without a byte-order mark) is accepted; other
    encodings are recognised and named in the error, with what to do. Give ``encoding``
    (e.g. the error's ``suggested_encoding``) to read the file that way instead.
    """
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise CsvImportError(
            "empty",
            f"{name} is empty: there is nothing to import. Export the list again, with a "
            "header row (e.g. email, name) and one row per recipient.",
        )
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise CsvImportError(
                "encoding", f"{name} cannot be read as {encoding}: {exc}. {_SAVE_AS_UTF8}"
            ) from exc
        text = text.removeprefix("\ufeff")
        if "\x00" in text or _control_ratio(text[:_SAMPLE_BYTES]) > 0.01:
            raise _binary_error(name)
        return text, encoding
    sample = data[:_SAMPLE_BYTES]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _looks_utf16(sample):
        if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            raise _binary_error(name)
        raise CsvImportError(
            "encoding",
            f"{name} is UTF-16 text (Excel's “Unicode Text” format), not UTF-8. "
            f"{_SAVE_AS_UTF8} Or read it as UTF-16.",
            suggested_encoding="utf-16",
        )
    if b"\x00" in data:
        raise _binary_error(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Random bytes also fail here: tell them apart from Latin-1 text by how much of the
        # file reads as text in Windows-1252 (the superset of Latin-1 that Excel writes).
        legacy = data[:_SAMPLE_BYTES].decode("cp1252", errors="replace")
        if legacy.count("\ufffd") > 0.001 * len(legacy) + 2 or _control_ratio(legacy) > 0.01:
            raise _binary_error(name) from exc
        bad = data[exc.start : exc.start + 1]
        shown = bad.decode("cp1252", errors="replace")
        line = _line_of(data, exc.start)
        raise CsvImportError(
            "encoding",
            f"{name} is not UTF-8 text: line {line} has the byte 0x{bad.hex().upper()}, which "
            f"looks like “{shown}” in Windows-1252/Latin-1 (the encoding of older Excel "
            f"exports). {_SAVE_AS_UTF8} Or read it as Windows-1252.",
            suggested_encoding="cp1252",
        ) from exc
    text = text.removeprefix("\ufeff")
    if _control_ratio(text[:_SAMPLE_BYTES]) > 0.01:
        raise _binary_error(name)
    return text, "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text: comma, semicolon, tab or pipe (comma when unsure)."""
    sample = text[:_SAMPLE_BYTES]
    cut = sample.rfind("\n")
    if cut > 0:
        sample = sample[:cut]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    # The sniffer gives up on a one-column file or ragged rows: count in the first line.
    first = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _looks_like_address(value: str) -> bool:
    value = value.strip()
    return "@" in value and email_problem(value) is None


def parse_text(text: str, *, name: str = "The file", encoding: str = "utf-8",
               delimiter: str | None = None) -> CsvTable:
    """A :class:`CsvTable` from CSV text (the first non-blank row is the header)."""
    delim = delimiter or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=False)
    rows: list[tuple[int, tuple[str, ...]]] = []
    header: tuple[str, ...] | None = None
    header_line = 1
    previous_end = 0
    old_limit = csv.field_size_limit()
    try:
        csv.field_size_limit(MAX_FIELD_CHARS)
        for values in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(v.strip() for v in values):
                continue
            cells = tuple(v.strip() for v in values)
            if header is None:
                header, header_line = cells, start
            else:
                rows.append((start, cells))
    except csv.Error as exc:
        line = previous_end + 1
        if "field larger" in str(exc):
            raise CsvImportError(
                "malformed",
                f"{name} is not a list of recipients: line {line} holds a value longer than "
                f"{MAX_FIELD_CHARS // 1024} KB (often an unclosed quote mark, or a file that "
                "is not CSV at all).",
            ) from exc
        raise CsvImportError(
            "malformed", f"{name} cannot be read as CSV at line {line}: {exc}."
        ) from exc
    finally:
        csv.field_size_limit(old_limit)
    if header is None:
        raise CsvImportError(
            "empty", f"{name} holds no rows: only blank lines. Nothing to import."
        )
    headerless = any(_looks_like_address(c) for c in header)
    if headerless:
        # The first row is already a recipient: number the columns instead.
        rows.insert(0, (header_line, header))
        width = max(len(v) for _, v in rows)
        header = tuple(f"Column {i + 1}" for i in range(width))
    elif not any(header):
        raise CsvImportError(
            "no_header",
            f"{name} has no column names in its first row. Add a header row such as "
            "“email,name” and import again.",
        )
    return CsvTable(
        header=header, rows=tuple(rows), delimiter=delim, encoding=encoding,
        header_line=header_line, headerless=headerless,
    )


def read_table(source: str | Path | bytes, *, encoding: str | None = None,
               delimiter: str | None = None) -> CsvTable:
    """Read a CSV file (a path or its bytes) into a :class:`CsvTable`.

    Raises :class:`CsvImportError` with a message for the person when the file is empty,
    too large, binary, not UTF-8 (unless ``encoding`` is given) or not CSV.
    """
    if isinstance(source, bytes):
        data, name = source, "The file"
    else:
        path = Path(source)
        name = f"“{path.name}”"
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise CsvImportError(
                    "too_large",
                    f"{name} is {size / 1024 / 1024:.0f} MB; recipient lists of up to "
                    f"{MAX_FILE_BYTES // 1024 // 1024} MB can be imported. Split it into "
                    "smaller files.",
                )
            data = path.read_bytes()
        except OSError as exc:
            raise CsvImportError(
                "unreadable", f"{name} cannot be read: {exc.strerror or exc}."
            ) from exc
    if len(data) > MAX_FILE_BYTES:
        raise CsvImportError(
            "too_large",
            f"{name} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB. Split it into "
            "smaller files.",
        )
    text, used = decode_bytes(data, name=name, encoding=encoding)
    return parse_text(text, name=name, encoding=used, delimiter=delimiter)


# --- columns ---------------------------------------------------------------------------------


def _norm(header: str) -> str:
    return "".join(ch for ch in header.lower() if ch.isalnum())


def attribute_key(header: str) -> str:
    """The ``[%KEY%]`` key for a column name: upper case, words joined by ``_``.

    "First name" → ``FIRST_NAME``, "Invoice #" → ``INVOICE``; a name with no letter or digit
    becomes ``COLUMN``.
    """
    ascii_name = (
        unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    )
    key = _KEY_RE.sub("_", ascii_name.strip()).strip("_").upper()
    return key or "COLUMN"


def guess_mapping(table: CsvTable) -> ColumnMapping:
    """The likely mapping: the address column by name (or by content), the name, attributes.

    Every column but the address becomes an attribute (the name columns too, so templates
    can use ``[%FIRST_NAME%]``). ``email`` is ``None`` when no column looks like addresses.
    """
    normalised = [_norm(h) for h in table.header]
    email: int | None = None
    if not table.headerless:
        for wanted in _EMAIL_HEADERS:
            if wanted in normalised:
                email = normalised.index(wanted)
                break
        if email is None:
            email = next(
                (i for i, h in enumerate(normalised) if "email" in h or "mail" in h), None
            )
    if email is None:
        # No column is called like one: the column whose values are mostly addresses.
        best, best_share = None, 0.0
        sample = table.rows[:200]
        for i in range(len(table.header)):
            values = [v[i] for _, v in sample if i < len(v) and v[i]]
            if not values:
                continue
            share = sum(1 for v in values if _looks_like_address(v)) / len(values)
            if share > best_share:
                best, best_share = i, share
        if best is not None and best_share >= 0.5 and (table.headerless or best_share >= 0.8):
            email = best
    name: tuple[int, ...] = ()
    full = next((i for i, h in enumerate(normalised) if h in _NAME_HEADERS and i != email), None)
    if full is not None:
        name = (full,)
    else:
        first = next((i for i, h in enumerate(normalised) if h in _FIRST_NAME_HEADERS), None)
        last = next((i for i, h in enumerate(normalised) if h in _LAST_NAME_HEADERS), None)
        name = tuple(i for i in (first, last) if i is not None and i != email)
    attributes: dict[int, str] = {}
    used: set[str] = set()
    for i, header in enumerate(table.header):
        if i == email:
            continue
        key = attribute_key(header)
        base, n = key, 2
        while key in used:  # two columns with the same name keep both values
            key, n = f"{base}_{n}", n + 1
        used.add(key)
        attributes[i] = key
    return ColumnMapping(email=email, name=name, attributes=attributes)


def apply_mapping(table: CsvTable, mapping: ColumnMapping) -> CsvImport:
    """Rows, bad rows and duplicates for ``table`` read with ``mapping``.

    Raises :class:`CsvImportError` (``no_email_column``) when no address column is chosen,
    listing the columns found.
    """
    if mapping.email is None or not 0 <= mapping.email < len(table.header):
        found = ", ".join(f"“{h}”" for h in table.header[:30]) or "none"
        more = f" (and {len(table.header) - 30} more)" if len(table.header) > 30 else ""
        raise CsvImportError(
            "no_email_column",
            f"No column holds email addresses. Columns found: {found}{more}. Name the address "
            "column “email” (or pick it in the column mapping) and import again.",
            columns=table.header,
        )
    for key in mapping.attributes.values():
        if not key or _KEY_RE.search(key):
            raise CsvImportError(
                "bad_key",
                f"“{key}” cannot be a placeholder key: use letters, digits and _ only.",
            )
    width = len(table.header)
    rows: list[CsvRecipient] = []
    problems: list[CsvProblem] = []
    first_line: dict[str, int] = {}
    lines_of: dict[str, list[int]] = {}
    for line, values in table.rows:
        email = values[mapping.email] if mapping.email < len(values) else ""
        if len(values) != width:
            # Tolerate missing trailing empty cells only when nothing was lost.
            problems.append(
                CsvProblem(
                    line,
                    f"Line {line} has {len(values)} value(s), but the header has {width} "
                    "column(s): a delimiter or quote mark is probably missing or extra.",
                    email,
                )
            )
            continue
        if not email:
            problems.append(CsvProblem(line, f"Line {line} has no address.", ""))
            continue
        reason = email_problem(email)
        if reason is not None:
            problems.append(CsvProblem(line, f"Line {line}: {reason}", email))
            continue
        name = " ".join(values[i] for i in mapping.name if i < len(values) and values[i])
        attributes = {key: values[i] for i, key in sorted(mapping.attributes.items())}
        folded = email.lower()
        first = first_line.setdefault(folded, line)
        lines_of.setdefault(folded, []).append(line)
        rows.append(
            CsvRecipient(
                line, email, name, attributes, duplicate_of=None if first == line else first
            )
        )
    spelled = {r.email.lower(): r.email for r in reversed(rows)}  # as first written
    duplicates = tuple(
        Duplicate(spelled[folded], tuple(lines))
        for folded, lines in lines_of.items()
        if len(lines) > 1
    )
    return CsvImport(table, mapping, tuple(rows), tuple(problems), duplicates)


def import_csv(source: str | Path | bytes, *, encoding: str | None = None,
               mapping: ColumnMapping | None = None) -> CsvImport:
    """Read, map (guessing the mapping unless given) and check a CSV list of recipients."""
    table = read_table(source, encoding=encoding)
    return apply_mapping(table, mapping if mapping is not None else guess_mapping(table))


__all__ = [
    "MAX_FILE_BYTES",
    "ColumnMapping",
    "CsvImport",
    "CsvImportError",
    "CsvProblem",
    "CsvRecipient",
    "CsvTable",
    "Duplicate",
    "apply_mapping",
    "attribute_key",
    "decode_bytes",
    "guess_mapping",
    "import_csv",
    "parse_text",
    "read_table",
    "sniff_delimiter",
]
