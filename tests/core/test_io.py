"""Reading the tables analysts really have (retention_core.io): formats, encodings, value types, dates, and a clear
DataError for everything that is not a usable table."""
from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from retention_core.errors import DataError
from retention_core import bounds
from retention_core.cells import coerce_types, datetime_share, parse_datetime
from retention_core.sheets import excel_sheets
from retention_core.text_tables import check_columns, decode_text, sniff_delimiter
from retention_core.io import (
    DEFAULT_MAX_COLUMNS,
    MAX_EXPANSION,
    digest,
    read_table,
)
from retention_core.sheets import choose_sheet, describes
from bench.badinput.bounded import address_space_ceiling
from bench.badinput.corpus import dictionary_workbook, xlsx_bytes, zip_bytes
from tests.conftest import real_path

ROWS = [["customer_id", "order_date", "amount"], ["00042", "2023-01-05", "12.50"], ["00043", "2023-02-06", "7.25"],
        ["00044", "2023-03-07", "100.00"]]


def _text(rows, sep=",") -> str:
    return "\n".join(sep.join(r) for r in rows) + "\n"


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ delimited text
@pytest.mark.parametrize("sep, fmt", [(",", "text"), (";", "text"), ("\t", "tsv"), ("|", "text")])
def test_delimiter_is_sniffed(sep, fmt):
    df = read_table(_text(ROWS, sep).encode())
    assert list(df.columns) == ["customer_id", "order_date", "amount"]
    assert df.attrs["read_info"]["delimiter"] == sep
    assert df.attrs["read_info"]["format"] == fmt
    assert df["customer_id"].tolist() == ["00042", "00043", "00044"]
    assert df["amount"].tolist() == [12.5, 7.25, 100.0]


def test_whitespace_aligned_text_with_crlf_and_leading_spaces():
    data = (b" customer_id  date number_of_cds  dollar_value\r\n"
            b" 00001 19970101  1   11.77\r\n 00002 19970112  5   77.00\r\n")
    df = read_table(data, name="cdnow.txt")
    assert df.attrs["read_info"]["delimiter"] == r"\s+"
    assert df["customer_id"].tolist() == ["00001", "00002"]
    assert df["date"].dtype == "int64" and df["number_of_cds"].tolist() == [1, 5]
    assert df["dollar_value"].tolist() == [11.77, 77.0]


def test_quoted_fields_with_delimiters_and_thousands_separators():
    data = b'id,description,revenue\n1,"Mug, blue",1234.5\n2,"Plate; white","1,234,567.25"\n3,Cup,"12"\n'
    df = read_table(data)
    assert df["description"].tolist() == ["Mug, blue", "Plate; white", "Cup"]
    assert df["revenue"].dtype == "float64"
    assert df["revenue"].tolist() == [1234.5, 1234567.25, 12.0]


def test_decimal_commas_in_semicolon_files():
    df = read_table(b"user;price;qty\na;12,50;1\nb;1.234,75;2\nc;3;3\n")
    assert df.attrs["read_info"]["delimiter"] == ";"
    assert df["price"].tolist() == [12.5, 1234.75, 3.0]
    assert df["qty"].tolist() == [1, 2, 3]


def test_numbers_become_numbers_and_identifiers_stay_text():
    data = (b"zip,order,big_id,qty,price,flag,code\n"
            b"01234,1001,123456789012345678901234,1,\xc2\xa312.50,yes,A1\n"
            b"98765,1002,123456789012345678901235,,\xc2\xa3 3.00,no,B2\n")
    df = read_table(data)
    assert df["zip"].tolist() == ["01234", "98765"]  # a leading zero: an identifier
    assert df["order"].dtype == "int64"
    assert df["big_id"].tolist() == ["123456789012345678901234", "123456789012345678901235"]  # too long: text
    assert str(df["qty"].dtype) == "Int64" and df["qty"].isna().tolist() == [False, True]
    assert df["price"].tolist() == [12.5, 3.0]  # currency sign stripped
    assert df["flag"].tolist() == ["yes", "no"] and df["code"].tolist() == ["A1", "B2"]


def test_missing_markers_and_blank_cells_are_missing_and_text_is_stripped():
    df = read_table(b"a,b,c\n  x ,NA,1\ny,,N/A\nz,-,3\n")
    assert df["a"].tolist() == ["x", "y", "z"]
    assert df["b"].isna().all()
    assert str(df["c"].dtype) == "Int64" and df["c"].tolist()[0] == 1 and pd.isna(df["c"].tolist()[1])


def test_trailing_delimiter_and_blank_header_cells():
    df = read_table(b"a,b,\n1,2,\n3,4,\n")
    assert list(df.columns) == ["a", "b"]
    df = read_table(b"a,,c\n1,2,3\n")
    assert list(df.columns) == ["a", "column_2", "c"]


def test_single_column_table_is_accepted():
    df = read_table(b"customer_id\n001\n002\n003\n")
    assert df["customer_id"].tolist() == ["001", "002", "003"]


# ----------------------------------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
def test_encodings_keep_pound_and_accents(encoding):
    text = "client,ville,prix\nA,Genève,£12\nB,Zürich,£7\nC,Besançon,£3\n"
    df = read_table(text.encode(encoding))
    assert list(df.columns) == ["client", "ville", "prix"]  # no BOM glued to the first name
    assert df["ville"].tolist() == ["Genève", "Zürich", "Besançon"]
    assert df["prix"].tolist() == [12, 7, 3]


def test_decode_text_reports_the_encoding():
    assert decode_text("é".encode("utf-8")) == ("é", "utf-8")
    assert decode_text(b"\xef\xbb\xbfa") == ("a", "utf-8-sig")
    assert decode_text("£".encode("cp1252")) == ("£", "cp1252")
    assert decode_text(b"\x81\xe9")[1] == "latin-1"  # 0x81 is undefined in cp1252
    assert decode_text(b"\xff\xfe\x00")[1] != "utf-16"  # an odd byte count is not UTF-16: no crash


# ----------------------------------------------------------------------------------------------------- compression
def test_gzip_and_zip_compressed_csv(tmp_path):
    raw = _text(ROWS).encode()
    gz = read_table(gzip.compress(raw), name="orders.csv.gz")
    assert gz.attrs["read_info"]["compression"] == "gzip" and len(gz) == 3
    zp = read_table(zip_bytes({"export/orders.csv": raw, "__MACOSX/._orders.csv": b"\x00\x01", ".DS_Store": b"\x00"}))
    assert zp.attrs["read_info"]["compression"] == "zip" and zp["customer_id"].tolist() == ["00042", "00043", "00044"]
    nested = read_table(zip_bytes({"orders.csv.gz": gzip.compress(raw)}))
    assert len(nested) == 3
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip.compress(raw))
    assert read_table(path).attrs["read_info"]["name"] == "orders.csv.gz"


def test_zip_with_several_tables_is_refused():
    raw = _text(ROWS).encode()
    with pytest.raises(DataError, match="several tables.*one file at a time"):
        read_table(zip_bytes({"2023.csv": raw, "2024.csv": raw}))


@pytest.mark.parametrize("kind", ["gzip", "zip"])
def test_compressed_file_that_expands_past_the_limit_is_refused(kind):
    bomb = b"a,b\n" + b"1,2\n" * 300_000  # 1.2 MB of text, compresses to a few kB
    data = gzip.compress(bomb) if kind == "gzip" else zip_bytes({"x.csv": bomb})
    assert len(data) < 20_000
    assert 0.05e6 * MAX_EXPANSION < len(bomb) < 0.1e6 * MAX_EXPANSION
    with pytest.raises(DataError, match="expands to more than"):
        read_table(data, max_mb=0.05)  # allows 0.05 MB x MAX_EXPANSION = 1 MB once decompressed
    assert len(read_table(data, max_mb=0.1)) == 300_000  # within 0.1 MB x 20: read


def test_damaged_gzip_and_zip():
    with pytest.raises(DataError, match="gzip file is damaged"):
        read_table(gzip.compress(_text(ROWS).encode())[:-12] + b"\x00" * 4)
    with pytest.raises(DataError, match="gzip file is damaged"):
        read_table(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage")
    with pytest.raises(DataError, match="zip"):
        read_table(zip_bytes({"a.csv": _text(ROWS).encode() * 50})[:200])


# --------------------------------------------------------------------------------------------------------- parquet
def test_parquet_from_bytes_and_path(tmp_path):
    frame = pd.DataFrame({"user": ["007", "008"], "n": [1, 2], "x": [1.5, np.inf],
                          "ts": pd.to_datetime(["2023-01-01", "2023-01-02"])})
    df = read_table(_parquet(frame), name="t.parquet")
    assert df.attrs["read_info"]["format"] == "parquet"
    assert df["user"].tolist() == ["007", "008"] and df["n"].tolist() == [1, 2]
    assert df["x"].isna().tolist() == [False, True]  # infinite values become missing
    assert pd.api.types.is_datetime64_any_dtype(df["ts"])
    p = tmp_path / "t.parquet"
    p.write_bytes(_parquet(frame))
    assert read_table(p).shape == (2, 4)


def test_parquet_damaged():
    with pytest.raises(DataError, match="not a readable Parquet"):
        read_table(_parquet(pd.DataFrame({"a": [1, 2]}))[:-30])


# ----------------------------------------------------------------------------------------------------------- excel
def test_excel_first_visible_data_sheet_by_default_and_sheet_choice():
    data = xlsx_bytes({"Notes": [], "Secret": [["a", "b"], [9, 9]], "Orders": [["user", "qty", "day"],
                  ["00042", 3, pd.Timestamp("2023-01-05 10:00").to_pydatetime()], ["00043", 4, None]],
                  "Customers": [["user", "country"], ["00042", "UK"]]}, hidden=("Secret",))
    sheets = excel_sheets(data)
    assert [(s["name"], s["hidden"], s["has_data"]) for s in sheets] == [
        ("Notes", False, False), ("Secret", True, True), ("Orders", False, True), ("Customers", False, True)]
    df = read_table(data, name="book.xlsx")
    info = df.attrs["read_info"]
    assert info["format"] == "excel" and info["sheet"] == "Orders"
    assert info["sheets"] == ["Notes", "Secret", "Orders", "Customers"]
    assert df["user"].tolist() == ["00042", "00043"]  # text cells with leading zeros stay text
    assert df["qty"].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(df["day"]) and df["day"].iloc[0] == pd.Timestamp("2023-01-05 10:00")
    assert list(read_table(data, sheet="Customers").columns) == ["user", "country"]
    assert list(read_table(data, sheet="Secret").columns) == ["a", "b"]  # a hidden sheet when asked for
    with pytest.raises(DataError, match="no sheet named 'Nope'.*Orders"):
        read_table(data, sheet="Nope")


def test_excel_table_below_blank_rows_and_only_hidden_data():
    data = xlsx_bytes({"Report": [[None], [None], [None], ["user", "value"], ["u1", 1.5], ["u2", 2]]})
    assert excel_sheets(data)[0]["has_data"]
    df = read_table(data)
    assert list(df.columns) == ["user", "value"] and df["value"].tolist() == [1.5, 2.0]
    only_hidden = xlsx_bytes({"Empty": [], "Hidden": [["a"], [1], [2]]}, hidden=("Hidden",))
    assert read_table(only_hidden).attrs["read_info"]["sheet"] == "Hidden"
    with pytest.raises(DataError, match="no sheet of this workbook holds data"):
        read_table(xlsx_bytes({"A": [], "B": []}))


def test_excel_damaged_and_duplicate_names():
    good = xlsx_bytes({"S": [["a", "b"], [1, 2]]})
    with pytest.raises(DataError, match="Excel file.*damaged|Excel file cannot be opened"):
        read_table(good[: len(good) // 2], name="book.xlsx")
    with pytest.raises(DataError, match="Excel"):
        read_table(good[: len(good) // 2], name="upload")  # recognised from its content too
    broken = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"<not xml" if item.filename == "xl/workbook.xml" else src.read(item))
    with pytest.raises(DataError, match="Excel file cannot be opened"):
        read_table(broken.getvalue())
    with pytest.raises(DataError, match="duplicate column names: 'a'"):
        read_table(xlsx_bytes({"S": [["a", "a"], [1, 2]]}))
    with pytest.raises(DataError, match="old Excel"):
        read_table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)


def test_excel_opens_on_the_main_table_not_the_data_dictionary_before_it():
    book = dictionary_workbook(n_users=200)
    df = read_table(book, name="customers.xlsx")
    info = df.attrs["read_info"]
    assert info["sheets"] == ["Data dictionary", "Customers"] and info["sheet"] == "Customers"
    assert "200 rows x 20 columns" in info["sheet_reason"]
    assert "'Data dictionary' describes its columns" in info["sheet_reason"]
    assert len(df) == 200 and {"customer_id", "churned"} <= set(df.columns)
    asked = read_table(book, sheet="Data dictionary")  # an explicit choice always wins
    assert list(asked.columns) == ["column", "type", "description"] and len(asked) == 20
    assert asked.attrs["read_info"]["sheet_reason"] == "the sheet asked for"
    assert read_table(book, sheet=0).attrs["read_info"]["sheet"] == "Data dictionary"


def test_a_dictionary_longer_than_the_table_still_steps_aside():
    names = [f"metric_{i}" for i in range(40)]
    dictionary = [["Field", "Meaning"]] + [[n, f"what {n} measures, in words"] for n in names]
    table = [["user"] + names] + [[f"u{r}"] + [r * i for i in range(40)] for r in range(12)]
    sheets = excel_sheets(xlsx_bytes({"About": dictionary, "Data": table}))
    assert [(s["rows"], s["columns"]) for s in sheets] == [(40, 2), (12, 41)]
    assert describes(sheets[0], sheets) == "Data" and describes(sheets[1], sheets) is None
    name, why = choose_sheet(sheets)
    assert name == "Data" and why.startswith("the sheet with the table (12 rows x 41 columns)")
    # a dictionary of no sheet here is recognised by its header alone
    generic = xlsx_bytes({"Notes": [["column name", "data type", "description"]] + [[f"c{i}", "text", "x"] for i in range(30)],
                     "Export": [["a", "b"], [1, 2], [3, 4]]})
    assert read_table(generic).attrs["read_info"]["sheet"] == "Export"


def test_sheet_choice_largest_then_first_and_hidden_last():
    sheets = excel_sheets(xlsx_bytes({"Summary": [["month", "orders"], ["Jan", 3], ["Feb", 4]],
                                 "Orders": [["user", "qty"]] + [[f"u{i}", i] for i in range(30)],
                                 "Big but hidden": [["user", "qty"]] + [[f"u{i}", i] for i in range(90)]},
                                hidden=("Big but hidden",)))
    name, why = choose_sheet(sheets)
    assert name == "Orders" and why == "the largest sheet (30 rows x 2 columns); hidden: 'Big but hidden'"
    same = excel_sheets(xlsx_bytes({"2023": [["user", "qty"], ["a", 1]], "2024": [["user", "qty"], ["b", 2]]}))
    assert choose_sheet(same) == ("2023", "the first of 2 sheets of the same size (1 rows x 2 columns)")
    with pytest.raises(DataError, match="No sheet of this workbook holds data"):
        choose_sheet([{"name": "A", "hidden": False, "has_data": False}])


def test_sheet_size_from_the_recorded_dimension_beyond_the_rows_scanned():
    rows = [["user", "qty"]] + [[f"u{i}", i] for i in range(500)]
    sheets = excel_sheets(xlsx_bytes({"Long": rows}))
    assert sheets[0]["rows"] == 500 and sheets[0]["columns"] == 2 and len(sheets[0]["sample"]) < 100


# ------------------------------------------------------------------------------------------------- bounds
def _gz_pieces(pieces) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        for piece in pieces:
            gz.write(piece)
    return buf.getvalue()


def test_too_many_columns_are_refused_before_parsing_and_the_limit_is_configurable():
    header = ",".join(f"c{i}" for i in range(12))
    data = (header + "\n" + ",".join("1" * 12) + "\n").encode()
    with pytest.raises(DataError, match=r"has 12 columns; the studio reads at most 10 \(set RETENTION_MAX_COLUMNS "
                                        r"to raise it\)\. Is the delimiter right\?"):
        read_table(data, max_columns=10)
    assert read_table(data, max_columns=12).shape == (1, 12)
    wide = ",".join(f"c{i}" for i in range(60_001)).encode() + b"\n" + b"0," * 60_000 + b"0\n"
    with pytest.raises(DataError, match="has 60,001 columns; the studio reads at most 5,000"):
        read_table(wide, name="wide.csv")
    assert DEFAULT_MAX_COLUMNS == 5000


def test_a_data_line_wider_than_the_limit_is_refused_and_quoted_delimiters_do_not_count():
    with pytest.raises(DataError, match="Line 3 of upload has 50 fields; the studio reads at most 10"):
        read_table(b"a,b\n1,2\n" + b",".join([b"0"] * 50) + b"\n", max_columns=10)
    quoted = b'id,text\n1,"' + b"x," * 40 + b'"\n2,plain\n'
    assert read_table(quoted, max_columns=10)["text"].str.len().tolist() == [80, 5]
    spaced = ("  ".join(f"c{i}" for i in range(30)) + "\n" + "   ".join("1" * 30) + "\n").encode()
    with pytest.raises(DataError, match="upload has 30 columns"):  # space-aligned text: runs of spaces
        read_table(spaced, max_columns=20)
    assert read_table(spaced, max_columns=30).attrs["read_info"]["delimiter"] == r"\s+"


def test_a_line_longer_than_the_limit_is_refused_before_parsing():
    data = b"id,notes\n1," + b"x" * 3_000 + b"\n2,short\n"
    with pytest.raises(DataError, match=r"Line 2 of upload is 0.0 MB long; .* at most 0.0 MB \(set "
                                        r"RETENTION_MAX_LINE_MB to raise it\)"):
        read_table(data, max_line_mb=0.002)
    assert len(read_table(data, max_line_mb=0.01)) == 2
    blob = _gz_pieces([b"x" * 1_000_000] * 30)  # one 30 MB line of nothing: stopped in the stream, at 10 MB
    with pytest.raises(DataError, match="Line 1 of upload is longer than 10.0 MB"):
        read_table(blob)


def test_a_gzip_of_one_enormous_line_is_refused_for_its_width_in_the_first_megabyte(monkeypatch):
    bomb = _gz_pieces([b"0," * 500_000] * 120 + [b"0\n"])  # about 120 KB -> one 120 MB line, 60M columns
    assert len(bomb) < 200_000
    made = []
    feed = bounds.Inflation.feed
    monkeypatch.setattr(bounds.Inflation, "feed", lambda self, chunk: (made.append(len(chunk)), feed(self, chunk)))
    with address_space_ceiling(1024), \
            pytest.raises(DataError, match="has more than 524,288 columns; the studio reads at most 5,000"):
        read_table(bomb, name="bomb.csv.gz")  # (without its bounds the reader took 20 GB: here, a MemoryError)
    assert sum(made) <= 1 << 20  # stopped after the first megabyte (its time: python -m bench.bad_input_report)
    with address_space_ceiling(1024), pytest.raises(DataError, match="more than .* columns"):
        read_table(gzip.compress(bomb), name="bomb.csv.gz.gz")  # gzip inside gzip: the same bounds


def test_a_gzip_that_expands_a_thousand_times_is_refused_by_its_ratio():
    rows = _gz_pieces([b"a,b\n"] + [b"0,0\n" * 250_000] * 30)  # 30 MB of rows in about 30 KB
    with pytest.raises(DataError, match=r"expands more than 100 times its size .*RETENTION_MAX_RATIO"):
        read_table(rows)
    small = _gz_pieces([b"a,b\n"] + [b"0,0\n" * 250_000] * 4)  # 4 MB: under the 20 MB a file may always expand to
    assert len(read_table(small)) == 1_000_000


def test_nested_compression_two_layers_read_more_refused():
    raw = _text(ROWS).encode()
    twice = read_table(gzip.compress(gzip.compress(raw)))
    assert twice.attrs["read_info"]["compression"] == "gzip + gzip" and len(twice) == 3
    assert read_table(zip_bytes({"a.csv.gz": gzip.compress(raw)})).attrs["read_info"]["compression"] == "zip + gzip"
    with pytest.raises(DataError, match="compressed three times"):
        read_table(gzip.compress(gzip.compress(gzip.compress(raw))))
    with pytest.raises(DataError, match="the zip file holds a zip file"):
        read_table(zip_bytes({"inner.zip": zip_bytes({"a.csv": raw})}))
    with pytest.raises(DataError, match="the gzip file holds a zip file"):
        read_table(gzip.compress(zip_bytes({"a.csv": raw})))


def test_parquet_width_and_rows_are_checked_from_the_footer():
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({f"c{i}": [0, 1] for i in range(30)}), buf)
    with pytest.raises(DataError, match="has 30 columns; the studio reads at most 20"):
        read_table(buf.getvalue(), max_columns=20)
    zeros = pa.array(np.zeros(1_000_000, dtype=np.int64))
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, pa.schema([("a", pa.int64())])) as w:
        for _ in range(5):
            w.write_table(pa.table({"a": zeros}))
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(DataError, match=r"holds 5,000,000 rows x 1 columns, at least 40.0 MB once loaded"):
        read_table(buf.getvalue())


def test_excel_width_is_checked_before_the_sheet_is_read():
    data = xlsx_bytes({"Wide": [[f"c{i}" for i in range(30)], list(range(30))]})
    with pytest.raises(DataError, match="Sheet 'Wide' of upload has 30 columns; the studio reads at most 20"):
        read_table(data, max_columns=20)
    assert read_table(data, max_columns=30).shape == (1, 30)


# ------------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("data, match", [
    (b"", "is empty"),
    (b"  \n\r\n\t ", "is empty"),
    (gzip.compress(b"\n\n"), "is empty"),
    (b"user,date,amount\n", "column names but no rows"),
    (b"user,date,amount\r\n\r\n", "column names but no rows"),
    (bytes(range(256)) * 8, "binary"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
    (b"%PDF-1.7\n%\xe2\xe3\n1 0 obj", "PDF"),
    (b"<!DOCTYPE html><html><body><table><tr><td>1</td></tr></table></body></html>", "web page"),
    (b"\n  <html>\n<p>hello, world</p></html>", "web page"),
    (b'{"users": [1, 2, 3], "ok": true}', "JSON"),
    (b'[{"a": 1}, {"a": 2}]', "JSON"),
    (b"a,b\n1,2\n3,4,5,6\n", "different numbers of fields.*line 3 has 4 fields"),
    (b"id,name,id\n1,x,2\n", "duplicate column names: 'id'"),
    (b"id,name,id \n1,x,2\n", "duplicate column names: 'id'"),
    (b"PK\x05\x06" + bytes(18), "empty zip"),
])
def test_not_a_table_is_refused_with_a_clear_message(data, match):
    with pytest.raises(DataError, match=match) as err:
        read_table(data)
    msg = str(err.value)
    assert "Traceback" not in msg and "tokenizing" not in msg and len(msg) < 400


def test_sql_style_bracket_header_is_not_mistaken_for_json():
    df = read_table(b"[id],[name]\n1,a\n2,b\n")
    assert list(df.columns) == ["[id]", "[name]"]


def test_size_limit_for_bytes_paths_and_streams(tmp_path):
    data = _text(ROWS).encode() * 1000  # about 80 kB
    with pytest.raises(DataError, match="over the size limit of 0.0 MB|over the size limit"):
        read_table(data, max_mb=0.01)
    p = tmp_path / "big.csv"
    p.write_bytes(data)
    with pytest.raises(DataError, match="big.csv is .* over the size limit"):
        read_table(p, max_mb=0.01)
    with pytest.raises(DataError, match="over the size limit"):
        read_table(io.BytesIO(data), max_mb=0.01)


def test_paths_that_are_not_files(tmp_path):
    with pytest.raises(DataError, match="File not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)


def test_check_columns_names_the_duplicates():
    check_columns(["a", "b"])
    with pytest.raises(DataError, match="'x', 'y'"):
        check_columns(["x", "y", "x ", "y", "z"])


def test_read_info_digest_and_file_objects():
    raw = _text(ROWS).encode()
    buf = io.BytesIO(raw)
    buf.name = "/some/folder/orders.csv"
    df = read_table(buf)
    assert df.attrs["read_info"]["name"] == "orders.csv"
    assert df.attrs["digest"] == digest(raw) and len(digest(raw)) == 16
    assert read_table(raw, name="x.csv").attrs["read_info"]["size_bytes"] == len(raw)


def test_sniff_delimiter():
    assert sniff_delimiter("a;b;c\n1;2,5;3\n") == ";"
    assert sniff_delimiter("a b c\n1 2 3\n") == r"\s+"
    assert sniff_delimiter('a,"b|c"\n1,"x|y"\n') == ","
    assert sniff_delimiter("") == ","


def test_coerce_types_keeps_objects_from_spreadsheets():
    raw = pd.DataFrame({"mixed": pd.Series([1, "2", 3.0], dtype=object),
                        "zips": pd.Series(["007", 12345, None], dtype=object),
                        "flag": pd.Series([True, False, None], dtype=object)})
    out = coerce_types(raw)
    assert out["mixed"].tolist() == [1, 2, 3]
    assert out["zips"].iloc[:2].tolist() == ["007", "12345"] and pd.isna(out["zips"].iloc[2])
    assert pd.api.types.is_string_dtype(out["zips"].dtype)
    assert out["flag"].tolist()[:2] == [True, False]


# ----------------------------------------------------------------------------------------------------------- dates
@pytest.mark.parametrize("values, expected", [
    (["2023-12-31 10:00:00", "2024-01-02 08:30:00"], ["2023-12-31 10:00", "2024-01-02 08:30"]),
    (["2023-12-31T10:00:00.250", "2024-01-02T08:30:00"], ["2023-12-31 10:00:00.250", "2024-01-02 08:30"]),
    (["31/12/2023 10:00", "01/02/2024 08:30"], ["2023-12-31 10:00", "2024-02-01 08:30"]),  # day first
    (["12/31/2023 10:00", "01/02/2024 08:30"], ["2023-12-31 10:00", "2024-01-02 08:30"]),  # month first
    (["31.12.2023", "01.02.2024"], ["2023-12-31", "2024-02-01"]),
    (["31-12-2023", "01-02-2024"], ["2023-12-31", "2024-02-01"]),
    (["20231231", "20240102"], ["2023-12-31", "2024-01-02"]),
    (["31 Dec 2023", "2 Jan 2024"], ["2023-12-31", "2024-01-02"]),
    (["2023-12-31T10:00:00+02:00", "2024-01-02T08:30:00Z"], ["2023-12-31 08:00", "2024-01-02 08:30"]),
    (["2023-12-31 10:00:00-0500", "2024-01-02 08:30 UTC"], ["2023-12-31 15:00", "2024-01-02 08:30"]),
])
def test_parse_datetime_text_formats(values, expected):
    out = parse_datetime(pd.Series(values + [None, ""]))
    assert out.dtype == "datetime64[ns]" and out.dt.tz is None
    assert out.iloc[:2].tolist() == [pd.Timestamp(e) for e in expected]
    assert out.iloc[2:].isna().all()


def test_parse_datetime_numbers_and_datetimes():
    assert parse_datetime(pd.Series([19970101, 19980630])).tolist() == [pd.Timestamp("1997-01-01"),
                                                                         pd.Timestamp("1998-06-30")]
    assert parse_datetime(pd.Series([1_700_000_000, None])).iloc[0] == pd.Timestamp("2023-11-14 22:13:20")
    assert parse_datetime(pd.Series([1_700_000_000_000])).iloc[0] == pd.Timestamp("2023-11-14 22:13:20")
    assert parse_datetime(pd.Series([45000.5])).iloc[0] == pd.Timestamp("2023-03-15 12:00")  # Excel serial
    assert parse_datetime(pd.Series([1.5, 2.5])).isna().all()
    aware = pd.Series(pd.to_datetime(["2023-06-01 12:00"]).tz_localize("Europe/Paris"))
    assert parse_datetime(aware).iloc[0] == pd.Timestamp("2023-06-01 10:00")


def test_parse_datetime_minority_in_other_format_and_garbage():
    values = ["2023-01-%02d 10:00:00" % d for d in range(1, 29)] + ["05/01/2023", "not a date"]
    out = parse_datetime(pd.Series(values))
    assert out.iloc[:28].notna().all() and pd.isna(out.iloc[-1])
    assert out.iloc[28].year == 2023
    assert parse_datetime(pd.Series(["abc", "def"])).isna().all()


def test_datetime_share():
    assert datetime_share(pd.Series(["2023-01-01", "2023-01-02", None])) == 1.0
    assert datetime_share(pd.Series([19970101, 19970102])) == 1.0
    assert datetime_share(pd.Series(["view", "purchase"])) == 0.0
    assert datetime_share(pd.Series([1.5, 2.5])) == 0.0
    assert datetime_share(pd.Series([], dtype=object)) == 0.0


# ------------------------------------------------------------------------------------------------- real files
def test_real_online_retail_parquet_reads_with_types():
    # How fast type detection is against the bare cost of objects: python -m bench.bench_reading (not a timed test).
    path = real_path("online_retail_ii_2009_2010.parquet")
    df = read_table(path)
    assert df.shape == (525_461, 8)
    assert df["Customer ID"].isna().sum() == 107_927
    assert df["Invoice"].str.startswith("C").sum() == 10_206  # cancellations keep the invoice as text
    assert pd.api.types.is_numeric_dtype(df["Quantity"]) and pd.api.types.is_numeric_dtype(df["Price"])
    ts = parse_datetime(df["InvoiceDate"])
    assert ts.notna().all() and ts.min() == pd.Timestamp("2009-12-01 07:45")
    assert ts.max().date() == pd.Timestamp("2010-12-09").date()


def test_real_cdnow_master_whitespace_file():
    df = read_table(real_path("cdnow_master.txt"))
    assert df.shape == (69_659, 4) and df.attrs["read_info"]["delimiter"] == r"\s+"
    assert df["customer_id"].iloc[0] == "00001" and df["customer_id"].nunique() == 23_570
    assert df["date"].dtype == "int64" and df["number_of_cds"].dtype == "int64"
    ts = parse_datetime(df["date"])
    assert ts.min() == pd.Timestamp("1997-01-01") and ts.max() == pd.Timestamp("1998-06-30")


def test_real_telco_total_charges_blanks_become_missing():
    df = read_table(real_path("telco_customer_churn.csv"))
    assert df.shape == (7_043, 21)
    assert df["TotalCharges"].dtype == "float64" and df["TotalCharges"].isna().sum() == 11
    assert df["customerID"].dtype == "str"  # pandas' own text type (Arrow-backed), not Python objects


def test_real_cdnow_summary():
    df = read_table(real_path("cdnow_customers_summary.csv"))
    assert df.shape == (2_357, 4) and list(df.columns) == ["ID", "frequency", "recency", "T"]


def test_real_file_round_trips_through_other_containers():
    """The same real table read from CSV, gzip, zip, Excel and Parquet gives the same values."""
    base = read_table(real_path("cdnow_customers_summary.csv")).head(300)
    csv_bytes = base.to_csv(index=False, sep=";").encode("cp1252")
    buf = io.BytesIO()
    base.to_excel(buf, index=False)
    for data in (csv_bytes, gzip.compress(csv_bytes), zip_bytes({"s.csv": csv_bytes}), buf.getvalue(), _parquet(base)):
        got = read_table(data)
        pd.testing.assert_frame_equal(got, base, check_dtype=False, check_exact=False)


# ------------------------------------------------------------------------------------------- property-based tests
_ALPHABET = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") + ["é", "ü", "£", " ", "-"])
_NA_TOKENS = {"na", "n/a", "nan", "null", "none", "#n/a", "-"}


@st.composite
def small_tables(draw):
    n_cols = draw(st.integers(2, 5))
    n_rows = draw(st.integers(1, 12))
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), min_size=n_cols, max_size=n_cols,
                          unique=True))
    cols = {}
    for name in names:
        kind = draw(st.sampled_from(["int", "float", "text", "id"]))
        if kind == "int":
            cols[name] = draw(st.lists(st.integers(-10**9, 10**9), min_size=n_rows, max_size=n_rows))
        elif kind == "float":
            cols[name] = draw(st.lists(st.integers(-10**6, 10**6).map(lambda v: v / 100 + 0.001), min_size=n_rows,
                                       max_size=n_rows))
        elif kind == "id":
            cols[name] = draw(st.lists(st.from_regex(r"0[0-9]{2,6}", fullmatch=True), min_size=n_rows, max_size=n_rows))
        else:
            words = st.text(_ALPHABET, min_size=1, max_size=10).map(str.strip).filter(
                lambda t: any(c.isalpha() for c in t) and t.lower() not in _NA_TOKENS)
            cols[name] = draw(st.lists(words, min_size=n_rows, max_size=n_rows))
    return pd.DataFrame(cols)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=small_tables(), sep=st.sampled_from([",", ";", "\t", "|"]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]),
       compress=st.sampled_from([None, "gzip", "zip"]), crlf=st.booleans())
def test_property_small_tables_round_trip(frame, sep, encoding, compress, crlf):
    text = frame.to_csv(index=False, sep=sep, lineterminator="\r\n" if crlf else "\n")
    data = text.encode(encoding)
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "zip":
        data = zip_bytes({"t.csv": data})
    got = read_table(data)
    assert list(got.columns) == list(frame.columns)
    assert got.attrs["read_info"]["delimiter"] == sep
    for col in frame.columns:
        want, have = frame[col], got[col]
        if pd.api.types.is_numeric_dtype(want.dtype):
            assert pd.api.types.is_numeric_dtype(have.dtype), col
            assert np.allclose(have.astype("float64"), want.astype("float64")), col
            if pd.api.types.is_integer_dtype(want.dtype):
                assert pd.api.types.is_integer_dtype(have.dtype), col
        else:
            assert have.tolist() == want.tolist(), col


_PREFIXES = [b"", b"\x1f\x8b\x08\x00", b"PK\x03\x04", b"PAR1", b"\xef\xbb\xbf", b"\xff\xfe", b"{", b"<html>", b"a,b\n",
             b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PK\x05\x06", b"BZh91AY&SY"]


@settings(max_examples=250, deadline=None)
@given(prefix=st.sampled_from(_PREFIXES), body=st.binary(max_size=400),
       wrap=st.sampled_from([None, "gzip", "zip"]))
def test_property_random_bytes_raise_only_data_error(prefix, body, wrap):
    data = prefix + body
    if wrap == "gzip":
        data = gzip.compress(data)
    elif wrap == "zip":
        data = zip_bytes({"x.csv": data})
    try:
        df = read_table(data, max_mb=0.01)
    except DataError as exc:
        assert str(exc)
    else:
        assert isinstance(df, pd.DataFrame) and len(df.columns) >= 1 and len(df) >= 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=12) | st.none(), max_size=20))
def test_property_parse_datetime_never_crashes(values):
    out = parse_datetime(pd.Series(values, dtype=object))
    assert out.dtype == "datetime64[ns]" and len(out) == len(values)
    assert 0.0 <= datetime_share(pd.Series(values, dtype=object)) <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("0123456789.,-+$£€ eE")), max_size=10), min_size=1,
                max_size=15))
@example(values=["1E309"])  # overflows to infinity: kept as text rather than lost
@example(values=["12", "1-2", " "])  # one cell is not a number: the column stays text, blank cells missing
def test_property_coerce_types_never_loses_values(values):
    """A column becomes numbers only when every non-empty cell parses; otherwise every cell is kept as text."""
    out = coerce_types(pd.DataFrame({"v": pd.Series(values, dtype=object)}))["v"]
    stripped = [v.strip() or None for v in values]
    if pd.api.types.is_numeric_dtype(out.dtype):
        assert out.notna().tolist() == [v is not None for v in stripped]
    else:  # text (pandas' str, or objects when every cell is blank): each cell as typed, stripped
        assert pd.api.types.is_string_dtype(out.dtype), out.dtype
        assert [None if pd.isna(v) else v for v in out.tolist()] == stripped


# ---------------------------------------------------------------------------------------- fast and plain text readers
_READER_CASES = {
    "crlf": "a,b\r\n1,2\r\n3,4\r\n", "cr only": "a,b\r1,2\r3,4\r", "doubled quotes": 'a,b\n"x ""q"" y",2\n"3",4\n',
    "quoted line break": 'a,b\n"line1\nline2",2\n3,4\n', "trailing delimiter": "a,b,\n1,2,\n3,4,\n",
    "blank lines": "a,b\n\n1,2\n\n\n3,4\n", "white line": "a,b\n   \n1,2\n", "short row": "a,b,c\n1,2\n3,4,5\n",
    "long row": "a,b\n1,2,3\n", "space before quote": 'a,b\n1, "x,y"\n', "unclosed quote": 'a,b\n"x,2\n3,4\n',
    "decimal commas": "a;b\n1,5;2\n3,25;4\n", "tabs": "a\tb\n1\t2\n", "pipes": "a|b\n1|2\n", "only header": "a,b,c\n",
    "empty header cell": "a,,c\n1,2,3\n", "padded": "a , b\n 1 , x \n2,y\n", "missing markers": "a,b\nNA,-\nnull,None\n#N/A,x\n",
    "quoted missing": 'a,b\n"NA",""\n1,2\n', "accents": "név,város\nÁrvíztűrő,Győr\n", "no final newline": "a,b\n1,2",
    "one column": "a\n1\n2\n", "quote inside": 'a,b\nx"y,2\n', "leading zeros": "id,v\n001,1.5\n002,2\n",
    "huge integer": "id\n123456789012345678901234\n", "empty column": "a,b\n1,\n2,\n", "quoted delimiter": 'a;b\n"1;2";3\n',
    "wide": ",".join(f"c{i}" for i in range(300)) + "\n" + ",".join(str(i) for i in range(300)) + "\n",
}


# texts the fast reader leaves to pandas' reader (which reads the first two and refuses the others)
_LEFT_TO_PANDAS = {"white line", "short row", "long row", "space before quote", "unclosed quote"}


def _both_readers(text: str):
    from retention_core.text_tables import read_text_arrow, read_text_pandas, sniff_delimiter

    d = sniff_delimiter(text)
    fast = read_text_arrow(text.encode("utf-8"), d)
    try:
        plain = read_text_pandas(text, d, "t.csv")
    except DataError:
        plain = None
    return fast, plain


def _same_reading(fast, plain) -> None:

    def names(header):
        return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in header]

    assert names(fast[0]) == names(plain[0])
    a, b = fast[1].copy(), plain[1].copy()
    a.columns = b.columns = range(a.shape[1])
    pd.testing.assert_frame_equal(coerce_types(a), coerce_types(b))


@pytest.mark.parametrize("case", sorted(_READER_CASES))
def test_fast_text_reader_reads_as_the_plain_one_or_leaves_it_to_it(case):
    """Arrow's CSV reader (several times faster) must read every text exactly as pandas' reader does, or decline it
    so pandas reads it (or explains what is wrong); it never reads what pandas refuses."""
    fast, plain = _both_readers(_READER_CASES[case])
    assert (fast is None) == (case in _LEFT_TO_PANDAS)  # every regular text takes the fast path
    if plain is None:
        assert fast is None
    elif fast is not None:
        _same_reading(fast, plain)


def test_fast_text_reader_takes_regular_files(sample_events_path):
    from retention_core.text_tables import read_text_arrow, decode_text

    text = decode_text(gzip.decompress(open(sample_events_path, "rb").read()))[0]
    fast, plain = _both_readers(text)
    assert fast is not None and len(fast[1]) > 10_000
    _same_reading(fast, plain)
    assert read_text_arrow(b"a,b\n1\n", ",") is None  # a short row: pandas' reader handles it


_cell = st.one_of(st.sampled_from(["", "NA", "-", "null", " ", "x", "1", "-2.5", "1,5", "007", '"q"', "a b"]),
                  st.text(alphabet='ab1;,." \n', max_size=6))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(_cell, min_size=1, max_size=4), min_size=1, max_size=6),
       sep=st.sampled_from([",", ";", "\t"]), quote_all=st.booleans())
def test_fast_text_reader_agrees_on_random_tables(rows, sep, quote_all):
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if quote_all or any(ch in v for ch in (sep, '"', "\n")) else v

    text = "h1" + sep + "h2\n" + "\n".join(sep.join(cell(v) for v in r) for r in rows) + "\n"
    fast, plain = _both_readers(text)
    if plain is None:
        assert fast is None
    elif fast is not None:
        _same_reading(fast, plain)
