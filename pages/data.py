"""Data: load a table, check what the product understood, validate it, look at cohorts and build a dataset."""
from __future__ import annotations

import streamlit as st

from ui import cache, data_panels, dataset_panels, state, uplift_panels
from ui.widgets import guard, page_header


def main() -> None:
    page_header("Data", ":material/database:",
                "Load an event log or a user table, check how each column is read, and turn it into a labelled "
                "dataset.")
    table = data_panels.choose_table()
    if table is None:
        state.set_table(None)
        return
    st.divider()
    schema = data_panels.understood(table.df, table.table_key)
    if schema is None:
        state.set_table(state.TableInfo(table.source, table.name, table.table_key, None, len(table.df)))
        data_panels.facts_and_preview(table.df, None, None)
        return
    sj = state.schema_json(schema)
    facts = None
    with guard("counting rows and users"):
        facts = cache.table_facts(table.table_key, sj, table.df)
    state.set_table(state.TableInfo(table.source, table.name, table.table_key, schema.kind,
                                    (facts or {}).get("rows", len(table.df)), (facts or {}).get("users")))

    st.divider()
    with guard("checking the data") as g:
        report = cache.validate(table.table_key, sj, table.df)
    if g.failed:
        return
    data_panels.validation_panel(report)
    st.divider()
    data_panels.facts_and_preview(table.df, schema, facts)

    st.divider()
    if schema.kind == "events":
        if report.ok:
            data_panels.cohort_panel(table.df, table.table_key, sj)
            st.divider()
        dataset_panels.event_dataset_builder(table, sj, report)
    else:
        dataset_panels.user_dataset_builder(table, schema, sj, report)
        uplift_panels.experiment_hint()  # a treatment column: uplift learners on the Train page


main()
