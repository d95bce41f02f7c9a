"""One explanation of scored users for every door: it describes the model that scored them.

BG/NBD learns its four parameters from the population it scores, so batch scoring refits it on the users scored. The
reasons of those users must come from that refitted model, not from the parameters saved at training: SHAP values in
probability space add up, per user, to the probability shown minus the base value."""
from __future__ import annotations

import numpy as np
import pytest

from tests.generated import generated_shop
from retention_core import bundle, explain, scoring
from retention_core.training import TrainConfig, train_models


@pytest.fixture(scope="module")
def bgnbd_run(tmp_path_factory):
    g = generated_shop(900, seed=11, days=540)
    tc = TrainConfig(models=["bgnbd", "logreg"])
    result = train_models(g.dataset, tc, horizon_days=60)
    path = bundle.save_run(tmp_path_factory.mktemp("runs") / "bg", result=result, schema=g.schema, dataset=g.dataset,
                           snapshot=g.cfg.as_dict(), data_digest="x", train_config=tc)
    return bundle.load_run(path), g.raw


def test_reasons_of_bgnbd_describe_the_parameters_refitted_at_scoring(bgnbd_run):
    run, raw = bgnbd_run
    scores, frame, seq = scoring.score(run, raw, model="bgnbd")
    assert len(frame) >= run.model("bgnbd").MIN_POPULATION  # scoring refits BG/NBD on these users
    expl = explain.ScoringExplanation(run, "bgnbd", frame, seq)
    saved, scored_by = run.model("bgnbd"), expl.model
    four = lambda m: [m.params_.r, m.params_.alpha, m.params_.a, m.params_.b]  # noqa: E731
    assert not np.allclose(four(saved), four(scored_by)), "the refit left the parameters unchanged: nothing to see"
    ex = expl.explainer()
    top = scores.nsmallest(40, "rank").index.to_numpy()  # the users most at risk, where the finding was
    X = frame.iloc[top].reset_index(drop=True)
    sv = ex.shap_values(X)
    assert ex.space == "probability"
    np.testing.assert_allclose(ex.expected_value + sv.sum(axis=1).to_numpy(),
                               scores["churn_probability"].to_numpy()[top], atol=1e-6)


def test_every_door_gives_the_same_reasons(bgnbd_run):
    """The command line's reason columns are the library object's, for BG/NBD and for a model that is not refitted."""
    run, raw = bgnbd_run
    for key in ("bgnbd", "logreg"):
        sf = scoring.score_file(run, raw, model=key, top=25, reasons=2)
        expl = explain.ScoringExplanation(run, key, sf.frame, sf.sequences)
        pos = scoring.list_positions(sf.scores, sf.chosen)
        want = expl.at(pos, n=2)
        assert sf.chosen["reason_1"].tolist() == want[0] and sf.chosen["reason_2"].tolist() == want[1]
        assert any(want[0]), f"{key}: no reasons at all"
    assert explain.depends_on_population(run, "bgnbd") and not explain.depends_on_population(run, "logreg")


def test_the_model_refitted_on_a_population_is_the_one_handed_out_again(bgnbd_run):
    from retention_core.models import for_population

    run, raw = bgnbd_run
    _, frame, _ = scoring.score(run, raw, model="bgnbd")
    X = frame[run.info["numeric"] + run.info["categorical"]]
    m = run.model("bgnbd")
    assert for_population(m, X) is for_population(m, X.copy())
    assert for_population(m, X.iloc[:600]) is not for_population(m, X)
