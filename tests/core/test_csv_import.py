"""Importing a CSV list of recipients: every bad file gets a clear message, every bad row its line.

The files are written the way spreadsheets write them (BOM, semicolons, quoted line breaks,
UTF-16 "Unicode text", Windows-1252), and the messages are checked for what a person needs:
what is wrong, where, and what to do.
"""

from __future__ import annotations

import codecs
import os
import time
from pathlib import Path

import pytest

from netcore_desktop.core.csv_import import (
    ColumnMapping,
    CsvImportError,
    apply_mapping,
    attribute_key,
    guess_mapping,
    import_csv,
    read_table,
)


def write(tmp_path: Path, data: bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- good files ------------------------------------------------------------------------------


def test_an_excel_export_with_bom_and_semicolons_maps_email_name_and_attributes(
    tmp_path: Path,
) -> None:
    text = (
        "E-mail;First name;Last name;Invoice #\r\n"
        "asha@example.net;Asha;Rao;INV-1042\r\n"
        "björn@example.org;Björn;Åberg;INV-1043\r\n"
    )
    path = write(tmp_path, codecs.BOM_UTF8 + text.encode("utf-8"))
    result = import_csv(path)
    assert result.table.delimiter == ";" and result.table.encoding == "utf-8-sig"
    assert result.table.header[0] == "E-mail"  # the BOM is not part of the first column name
    assert [(r.line, r.email, r.name) for r in result.rows] == [
        (2, "asha@example.net", "Asha Rao"),
        (3, "björn@example.org", "Björn Åberg"),
    ]
    assert result.rows[0].attributes == {
        "FIRST_NAME": "Asha", "LAST_NAME": "Rao", "INVOICE": "INV-1042",
    }
    assert result.attribute_keys == ("FIRST_NAME", "LAST_NAME", "INVOICE")
    assert result.problems == () and result.duplicates == ()
    assert result.summary() == "2 recipient(s) ready."


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [("email", ","), ("Email Address", "\t"), ("mail", "|"), ("e-mail", ";")],
)
def test_the_address_column_is_found_by_its_usual_names_and_any_delimiter(
    header: str, delimiter: str
) -> None:
    data = f"name{delimiter}{header}\nAsha{delimiter}asha@example.net\n".encode()
    table = read_table(data)
    assert table.delimiter == delimiter
    mapping = guess_mapping(table)
    assert mapping.email == 1 and mapping.name == (0,)


def test_a_list_without_header_uses_the_column_of_addresses() -> None:
    result = import_csv(b"asha@example.net,Asha\nbob@example.org,Bob\n")
    assert result.table.headerless
    assert [r.email for r in result.rows] == ["asha@example.net", "bob@example.org"]
    assert result.rows[0].line == 1
    assert result.rows[0].attributes == {"COLUMN_2": "Asha"}


def test_quoted_line_breaks_keep_the_line_numbers_of_later_rows() -> None:
    data = b'email,note\n"a@example.net","two\nlines"\nnot-an-address,x\n'
    result = import_csv(data)
    assert [r.line for r in result.rows] == [2]
    assert result.rows[0].attributes["NOTE"] == "two\nlines"
    assert [p.line for p in result.problems] == [4]


def test_a_person_can_choose_the_mapping() -> None:
    table = read_table(b"who,contact,city\nAsha,asha@example.net,Pune\n")
    mapping = ColumnMapping(email=1, name=(0,), attributes={2: "TOWN"})
    result = apply_mapping(table, mapping)
    assert result.rows[0].email == "asha@example.net"
    assert result.rows[0].attributes == {"TOWN": "Pune"}
    with pytest.raises(CsvImportError) as bad:
        apply_mapping(table, ColumnMapping(email=1, attributes={2: "MY TOWN"}))
    assert bad.value.code == "bad_key" and "MY TOWN" in str(bad.value)


def test_attribute_keys_are_placeholder_names() -> None:
    assert attribute_key("First name") == "FIRST_NAME"
    assert attribute_key("Café  crème") == "CAFE_CREME"
    assert attribute_key("#") == "COLUMN"


# --- bad rows and duplicates --------------------------------------------------------------------


def test_bad_rows_are_listed_with_their_line_numbers_and_reasons() -> None:
    data = (
        b"email,name,code\n"
        b"asha@example.net,Asha,1\n"
        b"asha.example.net,NoAt,2\n"
        b",Nobody,3\n"
        b"bob@example.org,Bob\n"
        b"carol@example.org,Carol,4,extra\n"
        b"\n"
        b"dan@example.org,Dan,5\n"
    )
    result = import_csv(data)
    assert [r.email for r in result.rows] == ["asha@example.net", "dan@example.org"]
    reasons = {p.line: p.message for p in result.problems}
    assert set(reasons) == {3, 4, 5, 6}
    assert "Line 3" in reasons[3] and "not a valid email address" in reasons[3]
    assert "no address" in reasons[4]
    assert "2 value(s)" in reasons[5] and "3 column(s)" in reasons[5]
    assert "4 value(s)" in reasons[6]
    # The blank line is skipped, and the line numbers after it still match the file.
    assert result.rows[1].line == 8


def test_the_same_address_twice_is_flagged_with_both_line_numbers() -> None:
    data = (
        b"email,first\n"
        b"asha@example.net,Asha\n"
        b"bob@example.org,Bob\n"
        b"ASHA@example.net,Asha again\n"
        b"asha@example.net,Asha thrice\n"
    )
    result = import_csv(data)
    assert len(result.duplicates) == 1
    dup = result.duplicates[0]
    assert dup.email == "asha@example.net" and dup.lines == (2, 4, 5)
    assert [r.duplicate_of for r in result.rows] == [None, None, 2, 2]
    assert [r.line for r in result.recipients()] == [2, 3]
    assert len(result.recipients(skip_duplicates=False)) == 4
    assert "appear more than once" in result.summary()


# --- bad files ------------------------------------------------------------------------------------


def test_an_empty_file_says_it_is_empty(tmp_path: Path) -> None:
    for data in (b"", b"\r\n\r\n  \n", codecs.BOM_UTF8):
        with pytest.raises(CsvImportError) as err:
            import_csv(write(tmp_path, data, "empty.csv"))
        assert err.value.code == "empty"
        assert "“empty.csv” is empty" in str(err.value)


def test_a_missing_email_column_lists_the_columns_found(tmp_path: Path) -> None:
    path = write(tmp_path, b"Name,City,Plan\nAsha,Pune,Gold\nBob,Oslo,Free\n")
    with pytest.raises(CsvImportError) as err:
        import_csv(path)
    message = str(err.value)
    assert err.value.code == "no_email_column"
    assert "No column holds email addresses" in message
    assert "“Name”, “City”, “Plan”" in message
    assert "email" in message  # what to do: name the column
    assert err.value.columns == ("Name", "City", "Plan")


def test_utf16_from_excel_is_named_with_what_to_do_and_can_be_read_anyway(
    tmp_path: Path,
) -> None:
    text = "email\tname\nasha@example.net\tAsha Rao\n"
    for data in (text.encode("utf-16"), text.encode("utf-16-le")):
        path = write(tmp_path, data)
        with pytest.raises(CsvImportError) as err:
            import_csv(path)
        assert err.value.code == "encoding"
        assert "UTF-16" in str(err.value) and "CSV UTF-8" in str(err.value)
        assert err.value.suggested_encoding == "utf-16"
    result = import_csv(write(tmp_path, text.encode("utf-16")), encoding="utf-16")
    assert result.rows[0].name == "Asha Rao"


def test_latin1_is_named_with_the_line_and_the_character(tmp_path: Path) -> None:
    text = "email;name;city\nasha@example.net;Asha;Pune\nzoe@example.org;Zoé;Montréal\n"
    path = write(tmp_path, text.encode("cp1252"))
    with pytest.raises(CsvImportError) as err:
        import_csv(path)
    message = str(err.value)
    assert err.value.code == "encoding" and err.value.suggested_encoding == "cp1252"
    assert "not UTF-8" in message and "line 3" in message and "“é”" in message
    assert "CSV UTF-8" in message
    result = import_csv(path, encoding=err.value.suggested_encoding)
    assert result.rows[1].name == "Zoé" and result.rows[1].attributes["CITY"] == "Montréal"


def test_ten_megabytes_of_random_bytes_are_refused_quickly(tmp_path: Path) -> None:
    path = write(tmp_path, os.urandom(10 * 1024 * 1024), "export.csv")
    started = time.perf_counter()
    with pytest.raises(CsvImportError) as err:
        import_csv(path)
    assert time.perf_counter() - started < 2.0
    assert err.value.code == "binary"
    assert "not a text file" in str(err.value) and "CSV" in str(err.value)


def test_ten_megabytes_of_text_garbage_are_refused_quickly(tmp_path: Path) -> None:
    # Printable but not a list: one endless line, and random words with no addresses.
    endless = write(tmp_path, b"q" * (10 * 1024 * 1024), "endless.csv")
    started = time.perf_counter()
    with pytest.raises(CsvImportError) as err:
        import_csv(endless)
    assert time.perf_counter() - started < 3.0
    assert err.value.code == "malformed" and "line 1" in str(err.value)

    words = (b"lorem ipsum dolor sit amet\n" * 400_000)[: 10 * 1024 * 1024]
    started = time.perf_counter()
    with pytest.raises(CsvImportError) as err:
        import_csv(write(tmp_path, words, "words.csv"))
    assert time.perf_counter() - started < 5.0
    assert err.value.code == "no_email_column"


def test_a_binary_file_with_a_csv_name_is_refused(tmp_path: Path) -> None:
    # The start of a real .xlsx (a zip archive) saved with a .csv name by mistake.
    data = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + os.urandom(4096)
    with pytest.raises(CsvImportError) as err:
        import_csv(write(tmp_path, data))
    assert err.value.code == "binary"


def test_a_missing_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(CsvImportError) as err:
        import_csv(tmp_path / "nowhere.csv")
    assert err.value.code == "unreadable" and "nowhere.csv" in str(err.value)
