"""search_runs over the cold run tables: candidates found by Arrow scans, and pages ordered in Arrow when the filter is
only param/tag equalities in MLflow's natural order. Oracle: MLflow's sqlite store fed the same calls, compared
page by page (run names stand for run ids, which differ between the stores)."""

from __future__ import annotations

import random

import pytest
from mlflow import MlflowClient
from mlflow.entities import Param, RunTag, ViewType

from tracking import _store_search

CASES = [
    ("", None),
    ("", ["attributes.start_time DESC"]),
    ("params.p = '1'", None),
    ("params.p = '1' and tags.t = 'b'", ["start_time DESC"]),
    ("tags.t = 'a'", ["metrics.m ASC"]),  # not natural: the general path
    ("params.p = '2' and metrics.m > 3", None),  # not only equalities: the general path
    ("params.missing = 'x'", None),
    ("", ["start_time ASC"]),
    ("", ["params.p DESC", "tags.t ASC"]),
    ("metrics.m > 2", ["metrics.m DESC"]),
    ("", ["attributes.run_name ASC"]),
    ("tags.t != 'a'", ["metrics.absent ASC", "end_time DESC"]),
]
NATURAL_FILTERS = ("", "params.p = '1'", "params.p = '1' and tags.t = 'b'", "params.missing = 'x'")


def _fill(uri: str, seed: int) -> str:
    rng = random.Random(seed)
    client = MlflowClient(uri)
    exp = client.create_experiment("e")
    for i in range(57):
        start = 1_700_000_000_000 + rng.randint(0, 20)  # many ties: the run id decides, as MLflow orders
        rid = client.create_run(exp, start_time=start, run_name=f"r{i:02d}").info.run_id
        client.log_batch(
            rid,
            params=[Param("p", str(i % 3))],
            tags=[RunTag("t", rng.choice("ab"))],
        )
        client.log_metric(rid, "m", float(i % 7))
        if i % 11 == 0:
            client.delete_run(rid)
    return exp


def _pages(client: MlflowClient, exp: str, filter_string: str, order_by, view) -> list[list[tuple]]:
    pages, token = [], None
    while True:
        page = client.search_runs([exp], filter_string, view, max_results=10, order_by=order_by, page_token=token)
        pages.append([(r.info.run_name, r.info.start_time, r.data.params.get("p"), r.info.run_id) for r in page])
        token = page.token
        if not token:
            return pages


@pytest.mark.parametrize("view", [ViewType.ACTIVE_ONLY, ViewType.ALL])
def test_search_pages_equal_sqlites(lake_uri, sqlite_uri, view, monkeypatch):
    natural = []
    real = _store_search._in_natural_order_by_equalities
    monkeypatch.setattr(
        _store_search,
        "_in_natural_order_by_equalities",
        lambda *a: natural.append(real(*a)) or natural[-1],
    )
    lake_exp, sq_exp = _fill(lake_uri, 3), _fill(sqlite_uri, 3)
    lake, sq = MlflowClient(lake_uri), MlflowClient(sqlite_uri)
    # ties in start_time are ordered by run id, which differ between the stores: sqlite is compared without run ids,
    # and the Arrow-ordered pages are compared with this store's general path (MLflow's SearchUtils) exactly
    for filter_string, order_by in CASES:
        natural.clear()
        mine, theirs = (
            _pages(lake, lake_exp, filter_string, order_by, view),
            _pages(sq, sq_exp, filter_string, order_by, view),
        )
        assert [len(p) for p in mine] == [len(p) for p in theirs], filter_string
        flat = lambda pages: [r[:3] for p in pages for r in p]  # noqa: E731
        assert sorted(flat(mine)) == sorted(flat(theirs)), filter_string
        if not any(o.startswith(("metrics.", "params.", "tags.", "attributes.run_name")) for o in order_by or []):
            assert [r[1] for r in flat(mine)] == [r[1] for r in flat(theirs)], f"{filter_string}: start-time order"
        forced = natural.copy()
        monkeypatch.setattr(_store_search, "_in_natural_order_by_equalities", lambda *a: False)
        general = _pages(MlflowClient(lake_uri), lake_exp, filter_string, order_by, view)
        monkeypatch.setattr(_store_search, "BULK_FROM", 5)  # runs built in bulk, 7 at a time
        monkeypatch.setattr(_store_search, "BULK_CHUNK", 7)
        bulk = _pages(MlflowClient(lake_uri), lake_exp, filter_string, order_by, view)
        monkeypatch.setattr(_store_search, "BULK_FROM", 10**9)
        assert bulk == general, f"{filter_string} {order_by}: bulk building changes nothing"
        monkeypatch.setattr(
            _store_search, "_in_natural_order_by_equalities", lambda *a: natural.append(real(*a)) or natural[-1]
        )
        assert mine == general, f"{filter_string}: the Arrow-ordered pages are MLflow's own order, run id for run id"
        natural_case = filter_string in NATURAL_FILTERS and order_by in (
            None,
            ["attributes.start_time DESC"],
            ["start_time DESC"],
        )
        assert all(forced) == natural_case, (filter_string, order_by)
