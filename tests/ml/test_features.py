"""The feature mart is point in time: features at an as-of date never change when later data arrives."""

from __future__ import annotations

import pandas as pd

from ml.features import FEATURES, KEY, LABEL, load_features
from tests.ml.conftest import Shop


def test_features_at_a_date_do_not_change_when_later_data_arrives(shop: Shop) -> None:
    early = load_features(shop.early)
    late = load_features(shop.late)
    # The later 20 days really changed the past's raw data: new orders of old customers, returns of
    # old orders, status updates. The snapshots both builds share must still be identical.
    shared = sorted(set(early["as_of_date"]) & set(late["as_of_date"]) - {early["as_of_date"].max()})
    assert len(shared) >= 6, shared
    columns = [*KEY, *FEATURES]
    before = early[early["as_of_date"].isin(shared)][columns].reset_index(drop=True)
    after = late[late["as_of_date"].isin(shared)][columns].reset_index(drop=True)
    assert len(before) > 1000
    pd.testing.assert_frame_equal(before, after)

    # A label already complete in the early build is final; later builds complete the others.
    complete = early[early["has_complete_label"]][[*KEY, LABEL]]
    assert complete[LABEL].notna().all()
    both = complete.merge(late[[*KEY, LABEL]], on=list(KEY), suffixes=("_early", "_late"))
    assert len(both) == len(complete) and (both[f"{LABEL}_early"] == both[f"{LABEL}_late"]).all()
    assert late["has_complete_label"].sum() > early["has_complete_label"].sum()
    # The scoring snapshot (the day after the last order day) has no label yet.
    assert late.loc[late["is_latest"], LABEL].isna().all()


def test_the_marts_own_tests_ran_and_passed(shop: Shop) -> None:
    # dbt build ran the mart's tests, including the singular point-in-time reconciliation.
    assert "assert_churn_features_are_point_in_time" in shop.build_stdout
    assert "ERROR=0" in shop.build_stdout and "FAIL=0" not in shop.build_stdout.replace("FAIL=0", "")
