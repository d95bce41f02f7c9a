"""Control groups (retention_core.control) and the statistics of campaign results (retention_core.monitor.campaigns):
exact stratified shares with the stated rounding, a seeded and repeatable draw, refused shares, and the uplift's
interval against Newcombe's published values and a hand computation."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from retention_core import campaign, control
from retention_core.errors import ConfigError
from retention_core.monitor import campaigns


def _list(n: int = 1037, seed: int = 0, stage: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = np.sort(rng.random(n))[::-1]
    out = pd.DataFrame({"user_id": [f"C{i:06d}" for i in rng.permutation(n)], "churn_probability": p,
                        "risk_decile": np.arange(n) * 10 // n + 1, "rank": np.arange(1, n + 1),
                        "scoring_date": "2024-08-02"})
    if stage:
        out["stage"] = rng.choice(["new", "active", "slipping", "lapsed"], n, p=[0.1, 0.5, 0.25, 0.15])
    return out


def _held(out: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    g = out.groupby(by)["group"]
    return pd.DataFrame({"n": g.size(), "control": g.apply(lambda s: int((s == "control").sum()))})


@pytest.mark.parametrize("share", [0.1, 0.3, 0.25, 0.5])
def test_each_stratum_holds_out_its_exact_share_and_the_total_is_rounded_once(share):
    lst = _list()
    out = control.assign_control(lst, share, seed=11)
    assert out.attrs["control"]["strata"] == ["risk_decile", "stage"]
    assert list(out.columns) == list(lst.columns) + ["group"] and set(out["group"]) == {"contact", "control"}
    pd.testing.assert_frame_equal(out.drop(columns="group"), lst)  # same rows, same order, nothing else changed
    s = Fraction(str(share))
    per = _held(out, ["risk_decile", "stage"])
    floor = [int(n * s // 1) for n in per["n"]]
    assert all(c in (f, f + 1) for c, f in zip(per["control"], floor)), per  # floor(n x share) or one more
    total = int((len(lst) * s + Fraction(1, 2)) // 1)  # round(N x share), halves up, in exact decimals
    assert per["control"].sum() == total == out.attrs["control"]["control"]
    assert out.attrs["control"]["contact"] == len(lst) - total


def test_the_largest_remainders_get_the_users_left_over():
    # five strata of 3 users at 10%: 0.3 each, 1.5 in all -> 2 users held out, in two different strata
    counts = control.control_counts([3, 3, 3, 3, 3], 0.1, seed=1)
    assert counts.sum() == 2 and set(counts) == {0, 1}
    # remainders 0.9, 0.5, 0.2 (sizes 9, 5, 2 at 10%, 1.6 in all -> 2): the 0.9 and the 0.5 get one each
    assert control.control_counts([9, 5, 2], 0.1, seed=0).tolist() == [1, 1, 0]
    assert control.control_counts([10, 20, 30], 0.1).tolist() == [1, 2, 3]  # exact: no float drift at 0.1
    assert control.control_counts([5], 0.5).tolist() == [3]  # 2.5 rounds half up
    # ties between equal remainders are broken by the seed, not always in the same stratum's favour
    firsts = {tuple(control.control_counts([3] * 5, 0.1, seed=s)) for s in range(20)}
    assert len(firsts) > 3


def test_without_a_stage_column_the_list_is_stratified_by_decile_alone():
    lst = _list(stage=False)
    out = control.assign_control(lst, 0.1, seed=2)
    assert out.attrs["control"]["strata"] == ["risk_decile"]
    per = _held(out, ["risk_decile"])
    assert ((per["control"] - per["n"] * 0.1).abs() <= 1).all()
    with pytest.raises(ConfigError, match="no such column"):
        control.assign_control(lst, 0.1, strata=["stage"])
    alone = control.assign_control(lst, 0.2, seed=2, strata=[])  # no strata: one draw over the whole list
    assert (alone["group"] == "control").sum() == round(len(lst) * 0.2)


def test_the_draw_is_seeded_repeatable_and_independent_of_row_order():
    lst = _list()
    a = control.assign_control(lst, 0.1, seed=5)
    b = control.assign_control(lst, 0.1, seed=5)
    pd.testing.assert_series_equal(a["group"], b["group"])
    shuffled = control.assign_control(lst.sample(frac=1, random_state=3), 0.1, seed=5)
    assert shuffled.set_index("user_id")["group"].reindex(lst["user_id"]).tolist() == a["group"].tolist()
    other = control.assign_control(lst, 0.1, seed=6)
    assert (other["group"] != a["group"]).sum() > 50, "another seed draws another group"
    # the default seed is the scoring date as a number: the same scoring, the same group
    d = control.assign_control(lst, 0.1)
    assert d.attrs["control"]["seed"] == 20240802
    pd.testing.assert_series_equal(d["group"], control.assign_control(lst, 0.1, seed=20240802)["group"])
    # the control group looks like the contacted: the same mix of risk
    assert abs(a.loc[a["group"] == "control", "churn_probability"].mean()
               - a.loc[a["group"] == "contact", "churn_probability"].mean()) < 0.05
    assert campaign.assign_control is control.assign_control  # the campaign module offers the same call


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.1, float("nan"), "ten", None])
def test_a_share_outside_0_to_1_is_refused_with_the_field_named(share):
    with pytest.raises(ConfigError) as e:
        control.assign_control(_list(50), share, seed=1)
    assert e.value.field == "control_share" and "control share" in str(e.value)


def test_the_campaign_tools_rows_leave_the_control_group_out():
    out = control.assign_control(_list(200), 0.25, seed=4)
    sent = control.contact_rows(out)
    assert len(sent) == 150 and (sent["group"] == "contact").all()
    assert sent["user_id"].tolist() == out.loc[out["group"] == "contact", "user_id"].tolist()
    assert control.control_note(out) == ("50 of 200 users held out as the control group (25% per risk decile and "
                                         "stage, seed 4)")
    plain = _list(20)
    assert control.contact_rows(plain) is plain  # no control group: the whole list


# ------------------------------------------------------------------------------------------------ statistics
@pytest.mark.parametrize("k1, n1, k0, n0, low, high", [
    (56, 70, 48, 80, 0.0524, 0.3339),  # Newcombe (1998), Statistics in Medicine 17, Table II, method 10
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
])
def test_the_uplift_interval_matches_newcombes_published_values(k1, n1, k0, n0, low, high):
    d, lo, hi = campaigns.newcombe(k1, n1, k0, n0)
    assert d == pytest.approx(k1 / n1 - k0 / n0)
    assert round(lo, 4) == pytest.approx(low, abs=1e-4) and round(hi, 4) == pytest.approx(high, abs=1e-4)


def test_the_uplift_interval_by_hand():
    # 190 of 400 contacted came back, 101 of 400 held out
    z = 1.959963984540054
    def wilson(k, n):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return centre - half, centre + half
    (l1, u1), (l0, u0) = wilson(190, 400), wilson(101, 400)
    p1, p0 = 190 / 400, 101 / 400
    want = (p1 - p0, p1 - p0 - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
            p1 - p0 + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2))
    assert campaigns.newcombe(190, 400, 101, 400) == pytest.approx(want, abs=1e-12)
    assert campaigns.wilson(0, 10)[0] == 0 and campaigns.wilson(10, 10)[1] == 1
    assert all(math.isnan(v) for v in campaigns.newcombe(3, 10, 0, 0))


def test_the_revenue_interval_by_hand():
    a, b = [10.0, 0.0, 30.0, 0.0], [0.0, 5.0, 0.0]
    d, lo, hi = campaigns.mean_difference(a, b)
    se = math.sqrt(np.var(a, ddof=1) / 4 + np.var(b, ddof=1) / 3)
    assert d == pytest.approx(10.0 - 5 / 3)
    assert (lo, hi) == pytest.approx((d - 1.959963984540054 * se, d + 1.959963984540054 * se))
    assert math.isnan(campaigns.mean_difference([1.0], [2.0, 3.0])[1])


def test_the_return_on_cost():
    rows = pd.DataFrame({"contact_users": [400, 10], "incremental_revenue": [3806.1, np.nan]})
    out = campaigns.with_cost(rows, 2.0)
    assert out["cost"].tolist() == [800.0, 20.0]
    assert out.loc[0, "net"] == pytest.approx(3006.1) and out.loc[0, "roi"] == pytest.approx(3006.1 / 800)
    assert np.isnan(out.loc[1, "roi"])  # no revenue in the log: no return
    assert campaigns.with_cost(rows, None)["roi"].isna().all()
    with pytest.raises(ConfigError):
        campaigns.with_cost(rows, -1)
