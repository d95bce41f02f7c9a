"""The command-line contract of offers: ``recommend`` writes one row per offer, ``score --offers N`` adds
``offer_1..offer_N``; bad input exits 2 with one ``error:`` line."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.core.test_cli import cli
from tests.core.test_recommend import _shop


@pytest.fixture(scope="module")
def shop_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "orders.csv"
    _shop(50, seed=2).to_csv(path, index=False)
    return path


def _one_error_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_recommend_writes_one_row_per_offer(shop_csv, tmp_path):
    out = tmp_path / "offers.csv"
    rc, stdout, err = cli("recommend", shop_csv, "--out", out, "--top", 4, "--product-col", "sku")
    assert rc == 0, err
    t = pd.read_csv(out, dtype={"user_id": str, "product": str})
    assert list(t.columns) == ["user_id", "rank", "product", "score", "basis", "product_name"]
    assert t.groupby("user_id")["rank"].max().eq(4).all() and t["user_id"].nunique() == 50
    assert "offers as of" in stdout
    rc, _, err = cli("recommend", shop_csv, "--out", out, "--top", 2, "--reasons", "--as-of", "2023-08-01",
                     "--description-col", "Description")
    assert rc == 0, err
    t = pd.read_csv(out, dtype={"user_id": str})
    assert list(t.columns) == ["user_id", "rank", "product", "score", "basis", "product_name", "reason"]
    assert t["rank"].max() == 2


def test_recommend_for_listed_users(shop_csv, tmp_path):
    users = tmp_path / "users.csv"
    pd.DataFrame({"user_id": ["U001", "U007"]}).to_csv(users, index=False)
    out = tmp_path / "offers.csv"
    rc, _, err = cli("recommend", shop_csv, "--out", out, "--users", users, "--top", 3)
    assert rc == 0, err
    assert sorted(pd.read_csv(out)["user_id"].unique()) == ["U001", "U007"]


@pytest.mark.parametrize("case, needle", [
    ("unknown_users", "not in the log"),
    ("no_products", "Offers need a product column"),
    ("empty_history", "No purchase of a product"),
    ("bad_top", "--top must be at least 1"),
    ("users_file_without_ids", "needs a user_id column"),
])
def test_recommend_bad_input_exits_2_with_one_error_line(shop_csv, tmp_path, case, needle):
    out = tmp_path / "offers.csv"
    args = ["recommend", shop_csv, "--out", out]
    if case == "unknown_users":
        f = tmp_path / "u.csv"
        pd.DataFrame({"user_id": ["U001", "ghost"]}).to_csv(f, index=False)
        args += ["--users", f]
    elif case == "no_products":
        f = tmp_path / "cdnow.csv"
        pd.DataFrame({"customer_id": ["a", "a", "b", "b"] * 5,
                      "date": pd.date_range("2023-01-01", periods=20).strftime("%Y%m%d"),
                      "dollar_value": [10.5] * 20}).to_csv(f, index=False)
        args = ["recommend", f, "--out", out]
    elif case == "empty_history":
        args += ["--as-of", "2019-01-01"]
    elif case == "bad_top":
        args += ["--top", 0]
    else:
        f = tmp_path / "u.csv"
        pd.DataFrame({"name": ["x"]}).to_csv(f, index=False)
        args += ["--users", f]
    rc, _, err = cli(*args)
    assert rc == 2
    assert needle in _one_error_line(err)
    assert not out.exists()


def test_recommend_on_a_real_log_without_products(real_file, tmp_path):
    rc, _, err = cli("recommend", real_file("cdnow_master.txt"), "--out", tmp_path / "o.csv")
    assert rc == 2 and "product column" in _one_error_line(err)


def test_score_with_offers_adds_offer_columns(shop_csv, tmp_path):
    run = tmp_path / "run"
    rc, _, err = cli("train", shop_csv, "--out", run, "--horizon", 60, "--models", "recency", "--product-col", "sku")
    assert rc == 0, err
    scores = tmp_path / "scores.csv"
    rc, _, err = cli("score", run, shop_csv, "--out", scores, "--offers", 2, "--top", 10)
    assert rc == 0, err
    s = pd.read_csv(scores, dtype=str, keep_default_na=False)
    assert {"offer_1", "offer_2"} <= set(s.columns) and "offer_3" not in s.columns
    assert s["offer_1"].str.match(r"^Product number \d+ \(P\d\d\)$").all()
    assert list(s.columns[:4]) == ["user_id", "churn_probability", "risk_decile", "rank"]
