"""A corpus of hostile files analysts upload by mistake or on purpose, written into a folder at test time.

Every case says what a careful product does with it: ``ok`` (a sane table is read), ``error`` (one clear message,
``needle`` is a word it must contain) or ``either`` (reading may work or stop with a clear message; both are fine, a
crash is not). ``max_mb`` is the upload size limit the case is run under (the compressed-bomb case needs a small one).
``heavy`` files are small files that would take gigabytes and minutes if the bounds checked before parsing were lost
(a one-line gzip bomb, a Parquet file of 50 million zeros, 60,001 columns ...): the tests run them in a child process
under a memory and time ceiling (bench/badinput/bounded.py) before, and instead of, reading them in the test process.
Nothing binary is kept in the repository: :func:`build_corpus` writes every file from code (the biggest, a 12 MB
long line, only in the temp folder; the 120 MB bomb is a 120 KB gzip written piece by piece).

    from bench.badinput.corpus import build_corpus
    cases = build_corpus(tmp_path)          # [Case(...), ...], each with .path
"""
from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

#: The size limit (MB) the compressed-bomb case runs under; it expands past MAX_EXPANSION times this.
BOMB_LIMIT_MB = 0.2
#: The one-line bomb: a gzip of about 120 KB holding one line of this many bytes (``0,0,0,...``: 60M columns).
LINE_BOMB_BYTES = 120_000_000


@dataclass
class Case:
    name: str                     # file name inside the corpus folder
    what: str                     # what the file is, in one line
    expect: str                   # for reading + inspect: "ok" | "error" | "either"
    needle: str | None = None     # a word the error message must contain (lower case)
    upload: bool = True           # False for things a browser cannot upload (a folder, a missing file)
    max_mb: float | None = None   # the size limit to read it under (None: the product default)
    heavy: bool = False           # would take gigabytes if the bounds were lost: run it in a bounded process first
    make: Callable[[Path], None] | None = field(default=None, repr=False)
    path: Path | None = None

    @property
    def data(self) -> bytes:
        """The file's bytes, as an upload would carry them."""
        assert self.path is not None and self.path.is_file(), self.name
        return self.path.read_bytes()


# ------------------------------------------------------------------------------------------------ small tables
def _csv(df: pd.DataFrame, **kw) -> bytes:
    return df.to_csv(index=False, **kw).encode("utf-8")


def event_log(n_users: int = 40, days: int = 400, seed: int = 0, *, every_week: bool = False,
              once: bool = False, start: str = "2023-01-02") -> pd.DataFrame:
    """A small shop log: customer_id, event_time, event_type, amount (purchases and views)."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    rows = []
    for u in range(n_users):
        uid = f"C{u:04d}"
        if every_week:
            times = [t0 + pd.Timedelta(days=7 * k, hours=int(rng.integers(8, 20))) for k in range(days // 7)]
        elif once:
            times = [t0 + pd.Timedelta(days=int(rng.integers(0, days)), hours=10)]
        else:
            n = int(rng.integers(1, 12))
            times = sorted(t0 + pd.Timedelta(days=int(d), hours=int(h))
                           for d, h in zip(rng.integers(0, days, n), rng.integers(0, 24, n)))
        for t in times:
            rows.append((uid, t, "purchase", round(float(rng.gamma(2.0, 25.0)), 2)))
            if rng.random() < 0.5:
                rows.append((uid, t - pd.Timedelta(minutes=5), "view", None))
    df = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "amount"])
    df = df.sort_values(["event_time", "customer_id"], kind="stable").reset_index(drop=True)
    df["event_time"] = df["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return df


def user_table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """A small user table: customer_id, plan, monthly_spend, orders_90d, churn (Yes/No)."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(3.0, n)
    spend = rng.gamma(2.0, 20.0, n).round(2)
    risk = -0.5 * orders + rng.normal(0, 1.0, n)
    return pd.DataFrame({
        "customer_id": [f"U{i:05d}" for i in range(n)],
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "monthly_spend": spend,
        "orders_90d": orders,
        "churn": np.where(risk > np.median(risk), "Yes", "No"),
    })


def xlsx_bytes(sheets: dict[str, list[list]], hidden: tuple[str, ...] = ()) -> bytes:
    """A workbook of these sheets (rows of cells), some hidden."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
        if title in hidden:
            ws.sheet_state = "hidden"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip archive of these files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in files.items():
            zf.writestr(n, b)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ the files
def _b(data: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(data() if callable(data) else data)
    return make


def _semicolon() -> bytes:
    return event_log(seed=1).to_csv(index=False, sep=";", decimal=",").encode("utf-8")


def _ragged() -> bytes:
    lines = ["customer_id,event_time,amount"] + [f"C{i},2023-01-{i % 28 + 1:02d},{i}.50" for i in range(30)]
    lines[12] += ",extra,fields"
    lines[20] = "C99;2023-02-01;3"
    return ("\n".join(lines) + "\n").encode()


def _mixed_encoding() -> bytes:
    df = event_log(n_users=20, seed=2)
    df["city"] = "Köln"
    head = df.iloc[:30].to_csv(index=False).encode("utf-8")
    tail = df.iloc[30:].to_csv(index=False, header=False).encode("cp1252")
    return head + tail


def _utf16() -> bytes:
    return event_log(n_users=20, seed=3).to_csv(index=False).encode("utf-16")  # with a BOM


def _mixed_dates() -> bytes:
    df = event_log(n_users=40, seed=4)
    ts = pd.to_datetime(df["event_time"])
    fmts = [lambda t: t.strftime("%Y-%m-%d %H:%M:%S"), lambda t: t.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
            lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"), lambda t: t.strftime("%d %b %Y %H:%M"),
            lambda t: t.strftime("%Y/%m/%d %H:%M"), lambda t: t.strftime("%Y-%m-%dT%H:%M:%S-0500")]
    df["event_time"] = [fmts[i % len(fmts)](t) for i, t in enumerate(ts)]
    return _csv(df)


def _three_labels() -> bytes:
    df = user_table(seed=5)
    df["churn"] = np.resize(["yes", "no", "maybe"], len(df))
    return _csv(df)


def _inf_huge() -> bytes:
    df = event_log(n_users=40, seed=6)
    df["amount"] = df["amount"].astype(object)
    specials = ["1e308", "-inf", "99999999999999999999", "inf", "1.7976931348623157e308", "-1e308"]
    buy = df.index[df["event_type"] == "purchase"]
    for i, v in zip(buy[::5], np.resize(specials, len(buy[::5]))):
        df.loc[i, "amount"] = v
    return _csv(df)


def _dup_headers() -> bytes:
    return b"customer_id,event_time,amount,amount\nC1,2023-01-01,1,2\nC2,2023-01-02,3,4\n"


def _bomb() -> bytes:
    # a CSV of zeros that expands well past MAX_EXPANSION (20) x BOMB_LIMIT_MB once decompressed
    n = int(BOMB_LIMIT_MB * 1e6 * 20 * 2 / 4) + 1
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(b"a,b\n")
        chunk = b"0,0\n" * 250_000
        for _ in range(n // 250_000 + 1):
            gz.write(chunk)
    return buf.getvalue()


def _gzip_stream(pieces) -> bytes:
    """A gzip file of the pieces, made piece by piece (never the whole expanded text in memory)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        for piece in pieces:
            gz.write(piece)
    return buf.getvalue()


def _line_bomb_pieces():
    piece = b"0," * 500_000
    for _ in range(LINE_BOMB_BYTES // len(piece)):
        yield piece
    yield b"0\n"


def _line_bomb() -> bytes:
    # about 120 KB that expand into one 120 MB line of 60 million columns: the bomb that took `inspect` past 20 GB
    return _gzip_stream(_line_bomb_pieces())


def _rows_bomb() -> bytes:
    # about 120 KB that expand into 120 MB of 30 million rows of "0,0": a thousand times its size
    return _gzip_stream([b"a,b\n"] + [b"0,0\n" * 250_000] * 120)


def _nested_bomb() -> bytes:
    return gzip.compress(_line_bomb(), mtime=0)


def _twice() -> bytes:
    return gzip.compress(gzip.compress(_csv(event_log(seed=27)), mtime=0), mtime=0)


def _thrice() -> bytes:
    return gzip.compress(_twice(), mtime=0)


def _zip_in_zip() -> bytes:
    return zip_bytes({"export.zip": zip_bytes({"orders.csv": _csv(event_log(seed=28))})})


def _very_wide() -> bytes:
    # 20,000 named columns of small numbers, 20 rows
    rng = np.random.default_rng(29)
    header = ",".join(f"feature_{i:05d}" for i in range(20_000))
    rows = [",".join(map(str, r)) for r in rng.integers(0, 10, size=(20, 20_000))]
    return ("\n".join([header, *rows]) + "\n").encode()


def _tiny_columns() -> bytes:
    # 60,001 columns of one character each: the width of the message
    header = ",".join(f"c{i}" for i in range(60_001))
    return (header + "\n" + ",".join("0" * 60_001) + "\n" + ",".join("1" * 60_001) + "\n").encode()


def _long_line() -> bytes:
    # a header and one 12 MB line with no delimiter in it (a pasted blob, or a file of another kind)
    return b"customer_id,notes\n" + b"x" * 12_000_000 + b"\nC2,short\n"


def _long_row() -> bytes:
    # a sane header and rows, then one 6 MB line of 3 million fields
    good = _csv(user_table(n=30, seed=30))
    return good + b",".join([b"0"] * 3_000_000) + b"\n"


def _wide_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({f"c{i}": pa.array([0, 1, 2], pa.int8()) for i in range(6_000)}), buf)
    return buf.getvalue()


def _rows_parquet() -> bytes:
    # 50 million rows x 2 columns of zeros in about half a megabyte (row groups written one by one)
    import pyarrow as pa
    import pyarrow.parquet as pq

    zeros = pa.array(np.zeros(1_000_000, dtype=np.int64))
    schema = pa.schema([("customer_id", pa.int64()), ("amount", pa.int64())])
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, schema, compression="zstd") as w:
        for _ in range(50):
            w.write_table(pa.table([zeros, zeros], schema=schema))
    return buf.getvalue()


def _wide_xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Wide")
    ws.append([f"c{i}" for i in range(6_000)])
    for r in range(3):
        ws.append([r] * 6_000)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


#: The columns of :func:`dictionary_workbook`'s user sheet, each with a type and a description.
DICTIONARY = [
    ("customer_id", "text", "Customer identifier, unique per customer"),
    ("plan", "text", "Subscription plan at the end of the period"),
    ("region", "text", "Sales region of the billing address"),
    ("tenure_months", "integer", "Months since the first order"),
    ("monthly_spend", "number", "Average spend per month, in pounds"),
    ("orders_90d", "integer", "Orders in the last 90 days"),
    ("orders_365d", "integer", "Orders in the last 365 days"),
    ("returns_90d", "integer", "Returned orders in the last 90 days"),
    ("avg_basket", "number", "Average order value, in pounds"),
    ("days_since_last_order", "integer", "Days between the last order and the end of the period"),
    ("sessions_30d", "integer", "Visits to the shop in the last 30 days"),
    ("email_opt_in", "yes/no", "Whether the customer accepts marketing e-mail"),
    ("app_user", "yes/no", "Whether the customer has used the mobile app"),
    ("support_tickets", "integer", "Support tickets opened in the last year"),
    ("discount_share", "number", "Share of orders placed with a discount code"),
    ("category_count", "integer", "Distinct product categories bought"),
    ("last_device", "text", "Device of the last visit"),
    ("payment_method", "text", "Payment method of the last order"),
    ("loyalty_tier", "text", "Loyalty programme tier"),
    ("churned", "yes/no", "Yes when the customer placed no order in the 90 days after the period"),
]


def dictionary_workbook(n_users: int = 300, seed: int = 31) -> bytes:
    """An Excel workbook whose first sheet is a 20-row data dictionary and whose second holds the users (an id, 18
    features and a Yes/No label), as analysts export them."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(3.0, n_users)
    users = {
        "customer_id": [f"U{i:05d}" for i in range(n_users)],
        "plan": rng.choice(["basic", "plus", "pro"], n_users).tolist(),
        "region": rng.choice(["North", "South", "East", "West"], n_users).tolist(),
        "tenure_months": rng.integers(1, 60, n_users).tolist(),
        "monthly_spend": rng.gamma(2.0, 20.0, n_users).round(2).tolist(),
        "orders_90d": orders.tolist(),
        "orders_365d": (orders + rng.poisson(6.0, n_users)).tolist(),
        "returns_90d": rng.poisson(0.3, n_users).tolist(),
        "avg_basket": rng.gamma(3.0, 12.0, n_users).round(2).tolist(),
        "days_since_last_order": rng.integers(0, 200, n_users).tolist(),
        "sessions_30d": rng.poisson(5.0, n_users).tolist(),
        "email_opt_in": rng.choice(["Yes", "No"], n_users).tolist(),
        "app_user": rng.choice(["Yes", "No"], n_users).tolist(),
        "support_tickets": rng.poisson(0.5, n_users).tolist(),
        "discount_share": rng.random(n_users).round(2).tolist(),
        "category_count": rng.integers(1, 12, n_users).tolist(),
        "last_device": rng.choice(["mobile", "desktop", "tablet"], n_users).tolist(),
        "payment_method": rng.choice(["card", "paypal", "invoice"], n_users).tolist(),
        "loyalty_tier": rng.choice(["none", "silver", "gold"], n_users).tolist(),
        "churned": np.where(orders + rng.normal(0, 1.0, n_users) < 2.5, "Yes", "No").tolist(),
    }
    assert list(users) == [c for c, _, _ in DICTIONARY]
    rows = [list(r) for r in zip(*users.values())]
    return xlsx_bytes({"Data dictionary": [["column", "type", "description"], *map(list, DICTIONARY)],
                  "Customers": [list(users), *rows]})


def _several_csvs() -> bytes:
    return zip_bytes({"orders_2023.csv": _csv(event_log(seed=7)), "orders_2024.csv": _csv(event_log(seed=8)),
                 "readme.txt": b"monthly exports"})


def _excel_formulas() -> bytes:
    log = event_log(n_users=20, seed=9)
    rows = [["customer_id", "event_time", "event_type", "amount", "check", "link"]]
    for r in log.itertuples(index=False):
        rows.append([r.customer_id, r.event_time, r.event_type, r.amount, "=1+1",
                     '=HYPERLINK("https://example.com/shop","open")'])
    secret = [["customer_id", "margin"], ["C0001", 0.4], ["C0002", 0.2]]
    return xlsx_bytes({"Internal": secret, "Orders": rows}, hidden=("Internal",))


_FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3", "=HYPERLINK(\"http://x\")"]


def _formula_cells() -> bytes:
    df = event_log(n_users=30, seed=10)
    ids = sorted(df["customer_id"].unique())
    swap = {u: f for u, f in zip(ids[:len(_FORMULAS)], _FORMULAS)}
    df["customer_id"] = df["customer_id"].map(lambda u: swap.get(u, u))
    df["note"] = np.resize(_FORMULAS + ["ok"], len(df))
    return _csv(df)


def _long_cell() -> bytes:
    df = user_table(n=60, seed=11)
    df["notes"] = "short"
    df.loc[3, "notes"] = "x" * 1_000_000
    return _csv(df)


def _wide() -> bytes:
    rng = np.random.default_rng(12)
    base = user_table(n=150, seed=12)
    extra = pd.DataFrame(rng.integers(0, 100, size=(150, 1995)), columns=[f"f{i:04d}" for i in range(1995)])
    return _csv(pd.concat([base, extra], axis=1))


def _all_missing() -> bytes:
    df = event_log(n_users=20, seed=13)
    for c in df.columns:
        df[c] = None
    return _csv(df)


def _nul_byte() -> bytes:
    data = bytearray(_csv(event_log(n_users=10, seed=14)))
    data[200] = 0
    return bytes(data)


def _blank_lines_inside() -> bytes:
    lines = _csv(event_log(n_users=15, seed=15)).decode().splitlines()
    return ("\n".join(lines[:10]) + "\n" * 10_000 + "\n".join(lines[10:]) + "\n").encode()


def _unparseable_ts() -> bytes:
    df = event_log(n_users=20, seed=16)
    df["event_time"] = np.resize(["soon", "last tuesday", "n/a yet", "??", "tbd"], len(df))
    return _csv(df)


def _future() -> bytes:
    return _csv(event_log(n_users=30, seed=17, start="2091-01-01"))


def _constant_features() -> bytes:
    df = user_table(seed=18)
    df["plan"], df["monthly_spend"], df["orders_90d"] = "basic", 10.0, 3
    return _csv(df)


def _returns_only() -> bytes:
    df = event_log(n_users=30, seed=19)
    df = df[df["event_type"] == "purchase"].drop(columns="event_type")
    df["amount"] = -df["amount"].abs()
    return _csv(df)


def _missing_ids() -> bytes:
    df = event_log(n_users=20, seed=20)
    df["customer_id"] = None
    return _csv(df)


def _truncated_parquet() -> bytes:
    buf = io.BytesIO()
    event_log(n_users=30, seed=21).to_parquet(buf, index=False)
    data = buf.getvalue()
    return data[: len(data) // 2]


def _corrupt_xlsx() -> bytes:
    good = xlsx_bytes({"Sheet1": [["a", "b"], [1, 2]]})
    return good[:40] + bytes(np.random.default_rng(22).integers(0, 256, 3000, dtype=np.uint8))


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


def _pdf() -> bytes:
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"


def _binary() -> bytes:
    return bytes(np.random.default_rng(23).integers(0, 256, 5000, dtype=np.uint8))


def _json() -> bytes:
    return b'[{"customer_id": "C1", "event_time": "2023-01-01", "amount": 3.5},\n {"customer_id": "C2"}]\n'


def _html() -> bytes:
    return (b"<!DOCTYPE html>\n<html><head><title>Orders</title></head><body><table><tr><td>customer_id</td>"
            b"<td>amount</td></tr><tr><td>C1</td><td>3</td></tr></table></body></html>\n")


def _one_user() -> bytes:
    return _csv(event_log(n_users=1, seed=24))


def _every_week() -> bytes:
    return _csv(event_log(n_users=30, days=560, seed=25, every_week=True))


def _once() -> bytes:
    return _csv(event_log(n_users=200, days=560, seed=26, once=True))


def _header_only() -> bytes:
    return b"customer_id,event_time,event_type,amount\n"


def _missing(path: Path) -> None:
    pass  # the path is never created


def _folder(path: Path) -> None:
    path.mkdir()


def cases() -> list[Case]:
    """The corpus, in a fixed order (files are not written yet: see :func:`build_corpus`)."""
    C = Case
    return [
        C("empty.csv", "a zero-byte file", "error", "empty", make=_b(b"")),
        C("header_only.csv", "a header row and no data", "error", "no rows", make=_b(_header_only)),
        C("random.bin", "5 KB of random bytes", "error", "binary", make=_b(_binary)),
        C("semicolon.csv", "an event log with ; delimiters and decimal commas", "ok", make=_b(_semicolon)),
        C("ragged.csv", "rows with different numbers of fields", "error", "fields", make=_b(_ragged)),
        C("mixed_encoding.csv", "UTF-8 rows followed by cp1252 rows in one file", "ok", make=_b(_mixed_encoding)),
        C("utf16_bom.csv", "an event log in UTF-16 with a byte-order mark", "ok", make=_b(_utf16)),
        C("one_user.csv", "an event log of a single customer", "ok", make=_b(_one_user)),
        C("everyone_returns.csv", "every customer buys every week (nobody churns)", "ok", make=_b(_every_week)),
        C("nobody_returns.csv", "every customer buys exactly once (nobody comes back)", "ok", make=_b(_once)),
        C("all_missing.csv", "every cell of every column is empty", "either", make=_b(_all_missing)),
        C("wide_2000.csv", "a user table with 2,000 columns", "ok", make=_b(_wide)),
        C("mixed_dates.csv", "timestamps in six formats and three time zones", "ok", make=_b(_mixed_dates)),
        C("three_labels.csv", "a user table whose churn label has three values", "either", make=_b(_three_labels)),
        C("inf_huge.csv", "amounts of 1e308, -inf, inf and 99999999999999999999", "ok", make=_b(_inf_huge)),
        C("dup_headers.csv", "two columns with the same name", "error", "duplicate", make=_b(_dup_headers)),
        C("bomb.csv.gz", f"a gzip that expands past 20 x {BOMB_LIMIT_MB} MB", "error", "expands",
          max_mb=BOMB_LIMIT_MB, make=_b(_bomb)),
        C("several.zip", "a zip holding two CSVs and a note", "error", "several", make=_b(_several_csvs)),
        C("formulas.xlsx", "Excel: a hidden sheet with data, a visible one with =1+1 and =HYPERLINK", "ok",
          make=_b(_excel_formulas)),
        C("formula_cells.csv", "ids and values that look like spreadsheet formulas", "ok", make=_b(_formula_cells)),
        C("long_cell.csv", "a user table with a 1 MB cell", "ok", make=_b(_long_cell)),
        C("data.json", "a JSON array", "error", "json", make=_b(_json)),
        C("page.html", "an HTML page with a table in it", "error", "web page", make=_b(_html)),
        C("report.pdf", "a PDF header", "error", "pdf", make=_b(_pdf)),
        C("chart.png", "a PNG header", "error", "png", make=_b(_png)),
        C("whitespace.csv", "spaces, tabs and newlines only", "error", "empty", make=_b(b"   \n\t \n  \r\n   \n")),
        C("nul_byte.csv", "an event log with a NUL byte in a cell", "error", "binary", make=_b(_nul_byte)),
        C("blank_lines.csv", "10,000 blank lines and nothing else", "error", "empty", make=_b(b"\n" * 10_000)),
        C("blank_lines_inside.csv", "an event log with 10,000 blank lines in the middle", "ok",
          make=_b(_blank_lines_inside)),
        C("unparseable_times.csv", "an event log whose timestamps are all words", "either",
          make=_b(_unparseable_ts)),
        C("future_only.csv", "an event log dated in the 2090s only", "either", make=_b(_future)),
        C("constant_features.csv", "a user table with a label but every feature constant", "ok",
          make=_b(_constant_features)),
        C("returns_only.csv", "an order log with negative amounts only (returns)", "either", make=_b(_returns_only)),
        C("no_user_ids.csv", "an event log whose user ids are all missing", "either", make=_b(_missing_ids)),
        C("truncated.parquet", "the first half of a Parquet file", "error", "parquet", make=_b(_truncated_parquet)),
        C("corrupt.xlsx", "an .xlsx whose zip body is garbage", "error", "damaged", make=_b(_corrupt_xlsx)),
        C("bomb_line.csv.gz", "a 120 KB gzip of one 120 MB line of 0,0,0,... (60 million columns)", "error",
          "columns", heavy=True, make=_b(_line_bomb)),
        C("bomb_rows.csv.gz", "a 120 KB gzip of 30 million rows of 0,0 (120 MB)", "error", "expands",
          heavy=True, make=_b(_rows_bomb)),
        C("bomb_nested.csv.gz.gz", "the one-line bomb gzipped again (under 1 KB)", "error", "columns",
          heavy=True, make=_b(_nested_bomb)),
        C("twice.csv.gz.gz", "an event log gzipped twice", "ok", make=_b(_twice)),
        C("thrice.csv.gz.gz.gz", "an event log gzipped three times", "error", "three times", make=_b(_thrice)),
        C("zip_in_zip.zip", "a zip holding a zip holding a CSV", "error", "zip", make=_b(_zip_in_zip)),
        C("wide_20000.csv", "20,000 columns of small numbers, 20 rows", "error", "20,000 columns",
          heavy=True, make=_b(_very_wide)),
        C("tiny_columns.csv", "60,001 one-character columns", "error", "60,001 columns", heavy=True,
          make=_b(_tiny_columns)),
        C("long_line.csv", "one 12 MB line with no delimiter in it", "error", "line 2", make=_b(_long_line)),
        C("long_row.csv", "a user table, then one line of 3 million fields", "error", "3,000,000 fields",
          heavy=True, make=_b(_long_row)),
        C("wide.parquet", "Parquet with 6,000 columns", "error", "6,000 columns", make=_b(_wide_parquet)),
        C("rows_bomb.parquet", "half a megabyte of Parquet holding 50 million rows of zeros", "error", "rows",
          heavy=True, make=_b(_rows_parquet)),
        C("wide.xlsx", "Excel with 6,000 columns", "error", "6,000 columns", make=_b(_wide_xlsx)),
        C("dictionary_first.xlsx", "Excel: a 20-row data dictionary sheet, then 300 users with an id and a label",
          "ok", make=_b(dictionary_workbook)),
        C("a_folder", "a folder, not a file", "error", "folder", upload=False, make=_folder),
        C("missing.csv", "a path where no file exists", "error", "not found", upload=False, make=_missing),
    ]


def build_corpus(folder: str | Path) -> list[Case]:
    """Write every case into ``folder`` (created if needed) and return the cases with their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for case in cases():
        case.path = folder / case.name
        assert case.make is not None
        case.make(case.path)
        out.append(case)
    return out
