"""A few rows through a fitted preprocessing without the ColumnTransformer (``models/preprocessing.py::
transform_rows``): exactly the ColumnTransformer's numbers, and so exactly the same probabilities, for every model
family's preprocessing (logistic regression: log, clip, impute, scale, one-hot; random forest and gradient boosting:
impute, ordinal codes; the neural network's one-hot preprocessing), on rows with missing, unseen, rare, blank and
infinite values; anything else keeps the ColumnTransformer.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer

from retention_core.models import preprocessing
from retention_core.models.preprocessing import make_preprocessor, transform_rows
from retention_core.models.sklearn_models import GradientBoostingModel, LogisticModel, RandomForestModel
from tests.core.test_sklearn_models import awkward, make_users

NUMERIC = ["recency_days", "orders", "revenue", "trend", "is_member", "empty"]


@pytest.fixture(scope="module")
def users():
    X, y = make_users(1500, 0)
    X["empty"] = np.nan  # a column without any value at fit
    X.loc[X.index[:3], "country"] = "  "  # blank text
    Xt, _ = make_users(400, 1)
    Xt["empty"] = np.nan
    Xt = awkward(Xt)
    Xt.loc[Xt.index[60:70], "revenue"] = np.inf
    Xt.loc[Xt.index[70:80], "empty"] = 5.0
    return X, y, Xt


def _pieces(Xt: pd.DataFrame):
    yield Xt
    for n in (1, 2, 7, 50):
        for start in (0, 15, 35, 55, 65, 300):
            yield Xt.iloc[start:start + n]


@pytest.mark.parametrize("settings", [
    {"scale": True, "log_heavy": True, "encoding": "onehot", "clip": True},   # logistic regression
    {"scale": True, "log_heavy": True, "encoding": "onehot", "skew_threshold": -np.inf},
    {"scale": False, "log_heavy": False, "encoding": "ordinal"},               # trees
])
def test_the_same_numbers_as_the_column_transformer(users, settings):
    X, y, Xt = users
    pre = make_preprocessor(NUMERIC, ["country"], **settings).fit(X, y)
    for part in _pieces(Xt):
        want, got = pre.transform(part), transform_rows(pre, part)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want, equal_nan=True)
    assert preprocessing._COMPILED[pre] is not None  # the compiled form was used, not the fallback


# a forest on several threads adds its trees' votes in any order (the last bit of a probability varies from call to
# call); on one thread, as the service runs it, the order is fixed
@pytest.mark.parametrize("model", [LogisticModel(), RandomForestModel(n_estimators=20, n_jobs=1),
                                   GradientBoostingModel(max_iter=40)], ids=["logistic", "forest", "boosting"])
def test_the_same_probabilities(users, model):
    X, y, Xt = users
    model.fit(X, y)
    pipe = model.pipeline_
    for part in _pieces(Xt):
        want = pipe.predict_proba(part)[:, list(pipe.classes_).index(1.0)]
        got = model.predict_proba(part)[:, 1]
        if isinstance(model, LogisticModel):
            # each row's score is summed on its own row (see the next test): equal to the pipeline's matrix product
            # up to the last bits of the sum's order, never more
            assert np.allclose(got, want, rtol=1e-13, atol=1e-15)
        else:
            assert np.array_equal(got, want)


def test_a_logistic_row_scores_the_same_alone_or_in_a_table(users):
    """A row's probability does not depend on the rows scored beside it: one customer through the service, a Spark
    partition and the whole table give the same bits."""
    X, y, Xt = users
    model = LogisticModel().fit(X, y)
    whole = model.predict_proba(Xt)
    alone = np.array([model.predict_proba(Xt.iloc[[i]])[0] for i in range(min(len(Xt), 200))])
    assert whole.shape == (len(Xt), 2)
    assert np.array_equal(whole[:len(alone)], alone)


def test_the_neural_network_preprocessing(users):
    pytest.importorskip("keras")
    from retention_core.models.keras_models import MLPModel

    X, y, Xt = users
    m = MLPModel(epochs=1).fit(X, y)
    for part in _pieces(Xt):
        assert np.array_equal(m._static(part), np.asarray(m.preprocessor_.transform(part), dtype=np.float32))
    assert preprocessing._COMPILED[m.preprocessor_] is not None


def test_other_transformers_keep_the_column_transformer(users):
    X, y, Xt = users
    pre = ColumnTransformer([("num", FunctionTransformer(np.log1p), ["orders"])]).fit(X, y)
    np.testing.assert_array_equal(transform_rows(pre, Xt.iloc[:3]), pre.transform(Xt.iloc[:3]))
    assert preprocessing._COMPILED[pre] is None


def test_a_compiled_form_that_differs_is_never_used(users):
    """The check before first use compares every category, missing and unseen values and awkward numbers: a lookup
    with one category's row changed, or an imputer statistic read a millionth off, fails it."""
    import copy

    X, y, Xt = users
    pre = make_preprocessor(NUMERIC, ["country"], scale=False, log_heavy=False, encoding="ordinal").fit(X, y)
    fast = preprocessing._compile(pre)
    assert fast is not None and preprocessing._agrees(pre, fast)
    (_, num_cols, steps), (_, cat_cols, lookups) = fast.parts
    shifted = copy.deepcopy(steps[2])
    shifted.statistics_ = shifted.statistics_ + 1e-6
    assert not preprocessing._agrees(pre, preprocessing._Compiled([("num", num_cols, [*steps[:2], shifted]),
                                                                   fast.parts[1]]))
    lookup, table, unknown = lookups[0]
    changed = table.copy()
    changed[lookup["DE"]] += 1
    assert not preprocessing._agrees(pre, preprocessing._Compiled([fast.parts[0],
                                                                   ("cat", cat_cols, [(lookup, changed, unknown)])]))
