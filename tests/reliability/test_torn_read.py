"""The torn state the load suite's reader saw once (`test_tracking_load.py`, with delta-spark: a run whose
log_batch tag was visible without its params and metrics), made deterministic: a reader refreshes the run tables
one by one; between two of its refreshes another process's log_batch commits to the journal, is applied to every
run table and its journal file is truncated away; the reader then finds no pending journal row, and shows the
tables it read after the call with the call and the ones read before it without.

`JournalBase.sync` re-reads the tables while the journal moved between reads; the tracking store's refresh
(`tracking/_tables.py`) goes through it (it used to apply the journal once, after one pass of reads: this test failed).
"""

from __future__ import annotations

from mlflow.entities import Metric, Param, RunTag

from tracking import LakehouseTrackingStore
from tracking._journal import TRUNCATE_AT


def _batch(store: LakehouseTrackingStore, rid: str, k: int) -> None:
    store.log_batch(rid, [Metric("acc", float(k), 1, 0)], [Param("p", str(k))], [RunTag("phase", "batch")])


def test_a_read_across_a_journal_truncation_is_not_torn(tmp_path):
    uri = f"lakehouse://{tmp_path / 'lake'}"
    writer, reader = LakehouseTrackingStore(uri), LakehouseTrackingStore(uri)
    exp = writer.create_experiment("e")
    others = [writer.create_run(exp, "u", 0, [], f"r{i}").info.run_id for i in range(TRUNCATE_AT)]
    target = writer.create_run(exp, "u", 0, [], "target").info.run_id
    reader.get_run(target)  # warm: the reader holds every table at the current version
    journal = writer._t.journal
    for i, rid in enumerate(others):  # fill the journal up to one file short of its truncation
        if len(journal.table.files) >= TRUNCATE_AT - 1:
            break
        _batch(writer, rid, i)
    assert len(writer._t.journal.table.files) == TRUNCATE_AT - 1

    tables = reader._t
    original = tables.refresh_tables
    armed = [True]

    def refresh_tables(names=None):
        names = list(names) if names is not None else list(tables.tables)
        if not armed or "mlflow.params" not in names[:-1]:
            return original(names)
        armed.clear()
        cut = names.index("mlflow.params") + 1
        original(names[:cut])  # the params read before the other process's call...
        _batch(writer, target, 99)  # ...which commits, applies everywhere and truncates the journal
        return original(names[cut:])

    tables.refresh_tables = refresh_tables
    run = reader.get_run(target)
    parts = {"params": "p" in run.data.params, "acc": "acc" in run.data.metrics, "tag": "phase" in run.data.tags}
    assert not armed, "the interleaving did not happen"
    assert len(set(parts.values())) == 1, f"part of one log_batch visible: {parts}"
