"""Id-like columns of a user table (row numbers, customer ids, surnames) are not features: the schema leaves them
out with a reason, the data report notes each, every door builds features without them, and the analyst can put
them back (overrides in the library and the app, ``--keep-column`` on the command line). Genuine features that are
nearly unique per row (a balance, a salary) stay."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from retention_core.dataset import user_dataset
from retention_core.errors import ConfigError
from retention_core.identifiers import id_columns, id_reason
from retention_core.io import read_table
from retention_core.roles import Schema, infer_schema
from retention_core.validation import validate
from tests.bank_table import GENUINE, bank_table
from tests.conftest import REPO_ROOT, real_path


@pytest.fixture(scope="module")
def bank() -> pd.DataFrame:
    return bank_table(2_000)


def _features(ds) -> set:
    return set(ds.numeric) | set(ds.categorical)


def test_bank_table_row_number_and_surname_are_left_out_with_their_reason(bank):
    schema = infer_schema(bank)
    assert schema.kind == "users" and schema.roles["user_id"] == "CustomerId" and schema.roles["label"] == "Exited"
    assert set(schema.id_columns) == {"RowNumber", "Surname"}
    assert schema.id_columns["RowNumber"] == "numbers 1 to 2,000 in row order (a row number)"
    assert "different values in 2,000 rows" in schema.id_columns["Surname"]
    rep = validate(bank, schema)
    notes = {f.examples[0]: f for f in rep.findings if f.code == "identifier_feature"}
    assert set(notes) == {"RowNumber", "Surname"}
    assert all(f.severity == "info" and "put it back" in f.action and "Data page" in f.action for f in notes.values())
    assert "numbers 1 to 2,000 in row order (a row number)" in notes["RowNumber"].message
    ds = user_dataset(bank, schema, rep)
    assert _features(ds) == set(GENUINE)  # nothing genuine dropped: Balance and EstimatedSalary are kept
    assert {"Balance", "EstimatedSalary", "CreditScore"} <= set(ds.numeric)


def test_a_customer_id_beside_the_chosen_user_id_is_left_out(bank):
    schema = infer_schema(bank, {"user_id": "RowNumber"})
    assert set(schema.id_columns) == {"CustomerId", "Surname"}
    assert "under an id-like name (an id)" in schema.id_columns["CustomerId"]
    ds = user_dataset(bank, schema, validate(bank, schema))
    assert _features(ds) == set(GENUINE)


def test_the_analyst_puts_identifiers_back(bank):
    kept = infer_schema(bank, {"keep_columns": ["RowNumber", "Surname"]})
    assert kept.id_columns == {} and kept.kept_columns == ["RowNumber", "Surname"]
    rep = validate(bank, kept)
    assert rep.get("identifier_feature") is None
    assert {f.examples[0] for f in rep.findings if f.code == "identifier_kept"} == {"RowNumber", "Surname"}
    ds = user_dataset(bank, kept, rep)
    assert "RowNumber" in ds.numeric and "Surname" in ds.categorical  # many names: a category once put back
    # the Data page's list: the analyst's list of identifiers wins; what the rule found and is not listed is put back
    chosen = infer_schema(bank, {"id_columns": ["Surname", "Tenure"]})
    assert set(chosen.id_columns) == {"Surname", "Tenure"} and chosen.kept_columns == ["RowNumber"]
    assert chosen.id_columns["Tenure"] == "left out as you chose"
    assert "Tenure" not in _features(user_dataset(bank, chosen, validate(bank, chosen)))
    # saved with a run and read back
    again = Schema.from_dict(json.loads(json.dumps(chosen.to_dict())))
    assert again.id_columns == chosen.id_columns and again.kept_columns == ["RowNumber"]
    with pytest.raises(ConfigError) as err:
        infer_schema(bank, {"keep_columns": ["Nope"]})
    assert err.value.field == "keep_columns"


@pytest.mark.parametrize("values, words", [
    (np.arange(300), "numbers 0 to 299 in row order (a row number)"),
    (np.arange(300, 0, -1), "numbers 300 to 1 in row order"),
    (np.random.default_rng(0).permutation(np.arange(1, 301)), "numbers 1 to 300, each once"),
    (np.arange(1000, 4000, 10), "numbers 1,000 to 3,990 in steps of 10 in row order"),
])
def test_row_numbers_in_any_order_or_step(values, words):
    assert words in id_reason("Unnamed: 0", pd.Series(values))


@pytest.mark.parametrize("name, values", [
    ("Balance", np.random.default_rng(1).normal(1e5, 3e4, 300).round(2)),  # unique, with fractions: measures
    ("EstimatedSalary", np.random.default_rng(2).uniform(10, 2e5, 300).round(2)),
    ("points", np.random.default_rng(3).choice(np.arange(10_000), 300, replace=False)),  # unique, uneven, no id name
    ("CreditScore", np.random.default_rng(4).integers(350, 851, 300)),
    ("Tenure", np.random.default_rng(5).integers(0, 11, 300)),
    ("plan", np.random.default_rng(6).choice(["basic", "plus", "pro"], 300)),
    ("signup", pd.date_range("2022-01-01", periods=300).strftime("%Y-%m-%d")),  # dates: become ages
    ("total", [f"{v:.2f}" for v in np.random.default_rng(7).uniform(1, 900, 300)]),  # numbers read as text
    ("HasCrCard", np.random.default_rng(8).integers(0, 2, 300).astype(bool)),
])
def test_genuine_columns_are_not_identifiers(name, values):
    assert id_reason(name, pd.Series(values)) is None


def test_text_identifiers_and_small_tables():
    n = 300
    emails = pd.Series([f"user{i}@example.com" for i in range(n)])
    assert "a different value in almost every row" in id_reason("contact", emails)
    member = pd.Series(np.random.default_rng(0).choice(np.arange(10_000, 99_999), n, replace=False))
    assert "under an id-like name" in id_reason("memberNo", member)
    assert id_reason("RowNumber", pd.Series(np.arange(10))) is None  # too few rows to judge
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "row": np.arange(n), "y": [0, 1] * (n // 2)})
    assert set(id_columns(frame, skip={"id", "y"})) == {"row"}


def test_event_logs_have_no_identifier_columns(sample_events_path):
    df = read_table(sample_events_path)
    assert infer_schema(df).id_columns == {}


def test_real_telco_keeps_every_genuine_column():
    df = read_table(real_path("telco_customer_churn.csv"))
    schema = infer_schema(df)
    assert schema.roles["user_id"] == "customerID" and schema.id_columns == {}
    rep = validate(df, schema)
    ds = user_dataset(df, schema, rep)
    assert _features(ds) == set(df.columns) - {"customerID", "Churn"}
    # without a user id, the customer id is an identifier, not a feature
    no_id = infer_schema(df, {"user_id": None})
    assert list(no_id.id_columns) == ["customerID"]


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    p = subprocess.run([sys.executable, "-m", "retention_core", *map(str, args)], capture_output=True, text=True,
                       cwd=REPO_ROOT, env=env, timeout=600)
    return p.returncode, p.stdout, p.stderr


def test_command_line_notes_identifiers_and_puts_them_back(bank, tmp_path):
    data = tmp_path / "bank.csv"
    bank.head(600).to_csv(data, index=False)
    rc, out, err = _cli("inspect", data)
    assert rc == 0 and "Column 'RowNumber' identifies customers: numbers 1 to 600 in row order" in out
    rc, out, err = _cli("train", data, "--out", tmp_path / "run", "--models", "logreg")
    assert rc == 0, err
    assert "note: Column 'Surname' identifies customers" in err and "--keep-column Surname" in err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert set(run["numeric"]) | set(run["categorical"]) == set(GENUINE)
    rc, out, err = _cli("train", data, "--out", tmp_path / "back", "--models", "logreg", "--keep-column", "RowNumber")
    assert rc == 0, err
    run = json.loads((tmp_path / "back" / "run.json").read_text())
    assert set(run["numeric"]) | set(run["categorical"]) == set(GENUINE) | {"RowNumber"}
    assert "RowNumber' looks like an identifier but was put back" in err
    rc, out, err = _cli("inspect", data, "--keep-column", "Nope")
    assert rc == 2 and err.startswith("error: --keep-column:")
