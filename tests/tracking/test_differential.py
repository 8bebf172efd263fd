"""Differential suite: each scenario runs through the real MLflow client against sqlite:/// and lakehouse:///."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from _differential import differential
from mlflow.entities import LoggedModelStatus, Metric, Param, RunStatus, RunTag, ViewType

pytestmark = pytest.mark.filterwarnings("ignore")


def test_experiments(backends):
    def scenario(c, rec):
        rec("default", lambda: c.get_experiment("0"))
        rec("create", lambda: c.create_experiment("exp-a", tags={"team": "ml"}))
        rec("create b", lambda: c.create_experiment("exp-b"))
        rec("duplicate", lambda: c.create_experiment("exp-a"))
        rec("empty name", lambda: c.create_experiment(""))
        rec("by name", lambda: c.get_experiment_by_name("exp-a"))
        rec("by missing name", lambda: c.get_experiment_by_name("nope"))
        rec("missing id", lambda: c.get_experiment("999"))
        rec("bad id", lambda: c.get_experiment("abc"))
        rec("rename", lambda: c.rename_experiment("1", "exp-a2"))
        rec("renamed", lambda: c.get_experiment("1"))
        rec("rename onto existing", lambda: c.rename_experiment("1", "exp-b"))
        rec("set tag", lambda: c.set_experiment_tag("1", "k", "v"))
        rec("overwrite tag", lambda: c.set_experiment_tag("1", "k", "v2"))
        rec("delete tag", lambda: c.delete_experiment_tag("1", "team"))
        rec("delete missing tag", lambda: c.delete_experiment_tag("1", "team"))
        rec("tags", lambda: c.get_experiment("1"))
        rec("delete", lambda: c.delete_experiment("2"))
        rec("delete again", lambda: c.delete_experiment("2"))
        rec("name of deleted is taken", lambda: c.create_experiment("exp-b"))
        rec("rename deleted", lambda: c.rename_experiment("2", "zzz"))
        rec("tag deleted", lambda: c.set_experiment_tag("2", "k", "v"))
        rec("get deleted", lambda: c.get_experiment("2"))
        rec("active", lambda: c.search_experiments())
        rec("deleted only", lambda: c.search_experiments(view_type=ViewType.DELETED_ONLY))
        rec("all", lambda: c.search_experiments(view_type=ViewType.ALL, order_by=["name ASC"]))
        rec("restore", lambda: c.restore_experiment("2"))
        rec("restore active", lambda: c.restore_experiment("2"))
        for i in range(5):
            c.create_experiment(f"page-{i}", tags={"i": str(i)})
        rec(
            "filter",
            lambda: c.search_experiments(filter_string="name LIKE 'page-%' AND tags.i != '2'", order_by=["name DESC"]),
        )
        rec("bad filter", lambda: c.search_experiments(filter_string="name = "))
        pages, token = [], None
        while True:
            page = c.search_experiments(max_results=2, page_token=token, order_by=["name ASC"])
            pages.append([e.name for e in page])
            token = page.token
            if not token:
                break
        rec("paged", lambda: pages)
        rec("bad max_results", lambda: c.search_experiments(max_results=0))
        rec("too many max_results", lambda: c.search_experiments(max_results=50001))

    differential(backends, scenario)


def test_runs_lifecycle_and_names(backends):
    def scenario(c, rec):
        exp = c.create_experiment("runs")
        r = rec("create named", lambda: c.create_run(exp, run_name="alpha", tags={"k": "v"}))
        rid = r.info.run_id
        rec("create conflicting name", lambda: c.create_run(exp, run_name="x", tags={"mlflow.runName": "y"}))
        rec("name from tag", lambda: c.create_run(exp, tags={"mlflow.runName": "from-tag"}))
        rec("get", lambda: c.get_run(rid))
        rec("get missing", lambda: c.get_run("0" * 32))
        rec("bad run id", lambda: c.get_run("bad id!"))
        rec("update", lambda: c.update_run(rid, status="FAILED", name="beta"))
        rec("after update", lambda: c.get_run(rid))
        rec("set runName tag", lambda: c.set_tag(rid, "mlflow.runName", "gamma"))
        rec("after runName tag", lambda: c.get_run(rid))
        rec("terminate", lambda: c.set_terminated(rid, status="FINISHED", end_time=123))
        rec("log after finish ok", lambda: c.log_param(rid, "p", "1"))
        rec("delete", lambda: c.delete_run(rid))
        rec("get deleted", lambda: c.get_run(rid))
        rec("log to deleted", lambda: c.log_metric(rid, "m", 1.0, timestamp=1, step=0))
        rec("param to deleted", lambda: c.log_param(rid, "q", "1"))
        rec("tag to deleted", lambda: c.set_tag(rid, "t", "1"))
        rec("update deleted", lambda: c.update_run(rid, status="FINISHED"))
        rec("restore", lambda: c.restore_run(rid))
        rec("restored", lambda: c.get_run(rid))
        rec("create in missing experiment", lambda: c.create_run("12345"))
        c.delete_experiment(exp)
        rec("run of deleted experiment", lambda: c.get_run(rid))
        rec("create in deleted experiment", lambda: c.create_run(exp))
        c.restore_experiment(exp)
        rec("run of restored experiment", lambda: c.get_run(rid))

    differential(backends, scenario)


def test_params_metrics_tags(backends):
    def scenario(c, rec):
        exp = c.create_experiment("pmt")
        rid = c.create_run(exp, run_name="r").info.run_id
        rec("param", lambda: c.log_param(rid, "alpha", "0.5"))
        rec("same param again", lambda: c.log_param(rid, "alpha", "0.5"))
        rec("changed param", lambda: c.log_param(rid, "alpha", "0.6"))
        rec("changed param in batch", lambda: c.log_batch(rid, params=[Param("alpha", "1")]))
        rec("duplicate keys in batch", lambda: c.log_batch(rid, params=[Param("b", "1"), Param("b", "2")]))
        rec("long key", lambda: c.log_param(rid, "k" * 251, "v"))
        rec("bad key", lambda: c.log_param(rid, "../x", "v"))
        rec("long value truncated", lambda: c.log_param(rid, "long", "x" * 7000))
        for step, ts, v in [(0, 10, 1.0), (2, 5, 3.0), (1, 50, 2.0), (2, 5, 2.5), (2, 5, 3.0)]:
            c.log_metric(rid, "loss", v, timestamp=ts, step=step)
        c.log_metric(rid, "n", float("nan"), timestamp=1, step=0)
        c.log_metric(rid, "n2", 1.0, timestamp=1, step=0)
        c.log_metric(rid, "n2", float("nan"), timestamp=1, step=1)
        c.log_metric(rid, "inf", math.inf, timestamp=1, step=0)
        c.log_metric(rid, "ninf", -math.inf, timestamp=1, step=0)
        rec("negative timestamp", lambda: c.log_metric(rid, "bad", 1.0, timestamp=-1))
        rec("bool value", lambda: c.log_batch(rid, metrics=[Metric("bad", True, 1, 0)]))
        rec("string value", lambda: c.log_batch(rid, metrics=[Metric("bad", "x", 1, 0)]))
        rec("history", lambda: c.get_metric_history(rid, "loss"))
        rec("history missing key", lambda: c.get_metric_history(rid, "nope"))
        rec("history missing run", lambda: c.get_metric_history("0" * 32, "loss"))
        rec("tag", lambda: c.set_tag(rid, "t", "1"))
        rec("overwrite tag", lambda: c.set_tag(rid, "t", "2"))
        rec("long tag key", lambda: c.set_tag(rid, "t" * 251, "2"))
        rec("delete tag", lambda: c.delete_tag(rid, "t"))
        rec("delete missing tag", lambda: c.delete_tag(rid, "t"))
        rec(
            "batch",
            lambda: c.log_batch(
                rid,
                metrics=[Metric("b1", 1.0, 7, 3), Metric("b2", 2.0, 7, 3)],
                params=[Param("bp", "x")],
                tags=[RunTag("bt", "y"), RunTag("t2", "z")],
            ),
        )
        rec("run", lambda: c.get_run(rid))
        store = c._tracking_client.store
        rec("1001 metrics", lambda: store.log_batch(rid, [Metric(f"m{i}", 1.0, 1, 0) for i in range(1001)], [], []))
        rec("101 params", lambda: store.log_batch(rid, [], [Param(f"p{i}", "1") for i in range(101)], []))
        rec("101 tags", lambda: store.log_batch(rid, [], [], [RunTag(f"t{i}", "1") for i in range(101)]))
        rec(
            "1000 metrics", lambda: store.log_batch(rid, [Metric(f"m{i}", float(i), 1, 0) for i in range(1000)], [], [])
        )
        rec("run with 1000 metrics", lambda: c.get_run(rid))

    differential(backends, scenario)


def test_metric_history_pagination(backends):
    def scenario(c, rec):
        rid = c.create_run("0").info.run_id
        c.log_batch(rid, metrics=[Metric("m", float(i % 7), 1000 + i, i) for i in range(250)])
        store = c._tracking_client.store
        token, pages = None, []
        while True:
            page = store.get_metric_history(rid, "m", max_results=100, page_token=token)
            pages.append(rec.norm(list(page)))
            token = page.token
            if not token:
                break
        rec("pages", lambda: pages)
        rec("bad token", lambda: store.get_metric_history(rid, "m", max_results=10, page_token="garbage"))

    differential(backends, scenario)


def test_fluent_flow_nested_runs_and_search_runs(backends):
    def scenario(c, rec):
        mlflow.set_experiment("fluent")
        for i in range(6):
            with mlflow.start_run(run_name=f"run-{i}"):
                mlflow.log_params({"lr": str(0.1 * i), "depth": str(i % 3)})
                mlflow.log_metrics({"acc": i / 10, "loss": 1 - i / 10})
                mlflow.set_tags({"family": "even" if i % 2 == 0 else "odd"})
                if i == 5:
                    with mlflow.start_run(run_name="child", nested=True):
                        mlflow.log_metric("acc", 0.99)
        exp = mlflow.get_experiment_by_name("fluent").experiment_id
        names = lambda runs: [r.info.run_name for r in runs]  # noqa: E731
        for f in [
            "metrics.acc > 0.25",
            "params.depth = '1'",
            "params.depth = '1' AND tags.family = 'odd'",
            "params.nope = '1'",
            "tags.mlflow.runName = 'run-2'",
            "tags.family = 'odd' AND metrics.loss < 0.8",
            "attributes.run_name LIKE 'run-%'",
            "attributes.run_name ILIKE 'RUN-1%'",
            "tags.mlflow.parentRunId IS NOT NULL",
            "params.lr IS NULL",
            "attributes.status = 'FINISHED'",
            "attributes.run_name IN ('run-1', 'run-3')",
            "metrics.acc != 0.3",
            "",
        ]:
            rec(f"search {f!r}", lambda f=f: names(c.search_runs([exp], f, order_by=["metrics.acc DESC"])))
        for o in [
            ["params.depth ASC", "metrics.acc DESC"],
            ["attributes.run_name"],
            ["tags.family DESC"],
            ["metrics.loss"],
        ]:
            rec(f"order {o}", lambda o=o: names(c.search_runs([exp], order_by=o)))
        rec("bad filter", lambda: c.search_runs([exp], "metrics.acc >>> 1"))
        rec("OR filter", lambda: c.search_runs([exp], "metrics.acc > 1 OR metrics.acc < 0"))
        rec("bad order", lambda: c.search_runs([exp], order_by=["metrics.acc SIDEWAYS"]))
        rec("bad max_results", lambda: c.search_runs([exp], max_results=50001))
        token, pages = None, []
        while True:
            page = c.search_runs([exp], max_results=2, page_token=token, order_by=["attributes.run_name"])
            pages.append(names(page))
            token = page.token
            if not token:
                break
        rec("pages", lambda: pages)
        rec("bad token", lambda: c.search_runs([exp], page_token="xyz"))
        child = c.search_runs([exp], "attributes.run_name = 'child'")[0]
        rec("child", lambda: child)
        c.delete_run(child.info.run_id)
        rec("deleted only", lambda: names(c.search_runs([exp], run_view_type=ViewType.DELETED_ONLY)))
        rec("all", lambda: sorted(names(c.search_runs([exp], run_view_type=ViewType.ALL))))
        df = mlflow.search_runs(order_by=["metrics.acc DESC"])
        rec("pandas columns", lambda: sorted(c for c in df.columns if not c.startswith("tags.mlflow.source")))
        rec("pandas acc", lambda: df["metrics.acc"].tolist())

    differential(backends, scenario)


def test_log_inputs_and_dataset_search(backends):
    def scenario(c, rec):
        mlflow.set_experiment("data")
        df = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
        ds = mlflow.data.from_pandas(df, name="train", targets="y")
        with mlflow.start_run(run_name="with-data") as run:
            mlflow.log_input(ds, context="training")
            mlflow.log_input(ds, context="training")
        with mlflow.start_run(run_name="no-data"):
            pass
        exp = run.info.experiment_id
        rec("run", lambda: c.get_run(run.info.run_id))
        rec(
            "dataset filter",
            lambda: [
                r.info.run_name for r in c.search_runs([exp], "dataset.name = 'train' AND dataset.context = 'training'")
            ],
        )
        with mlflow.start_run(run_name="eval-data"):
            mlflow.log_input(ds, context="eval")
            mlflow.log_input(mlflow.data.from_pandas(df.head(1), name="holdout"))
        rec(
            "dataset summaries (the UI's Datasets filter)",
            lambda: sorted(
                (s.experiment_id == exp, s.name, s.digest, s.context)
                for s in c._tracking_client.store._search_datasets([exp])
            ),
        )

    differential(backends, scenario)


def test_logged_models(backends):
    def scenario(c, rec):
        exp = c.create_experiment("models")
        rid = c.create_run(exp, run_name="trainer").info.run_id
        m = rec(
            "create",
            lambda: c.create_logged_model(
                exp, name="clf", source_run_id=rid, tags={"a": "1"}, params={"p": "2"}, model_type="sk"
            ),
        )
        mid = m.model_id
        rec("bad name", lambda: c.create_logged_model(exp, name="a/b"))
        rec("in missing experiment", lambda: c.create_logged_model("4242"))
        rec("get", lambda: c.get_logged_model(mid))
        rec("get missing", lambda: c.get_logged_model("m-" + "0" * 32))
        rec("set tags", lambda: c.set_logged_model_tags(mid, {"b": "2", "a": "3"}))
        rec("delete tag", lambda: c.delete_logged_model_tag(mid, "b"))
        rec("delete missing tag", lambda: c.delete_logged_model_tag(mid, "b"))
        rec("log params", lambda: mlflow.log_model_params({"q": "3", "r": "4"}, model_id=mid))
        rec("log params of a missing model", lambda: mlflow.log_model_params({"q": "3"}, model_id="m-" + "0" * 32))
        rec("with params", lambda: c.get_logged_model(mid).params)
        c.log_batch(rid, metrics=[Metric("acc", 0.9, 1, 0, model_id=mid, dataset_name="d", dataset_digest="x")])
        rec("finalize", lambda: c.finalize_logged_model(mid, LoggedModelStatus.READY))
        rec("get ready", lambda: c.get_logged_model(mid))
        c.create_logged_model(exp, name="other")
        rec("search", lambda: c.search_logged_models([exp], order_by=[{"field_name": "name", "ascending": True}]))
        rec("search filter", lambda: c.search_logged_models([exp], filter_string="name = 'clf'"))
        rec("search metric", lambda: c.search_logged_models([exp], filter_string="metrics.acc > 0.5"))
        rec("run outputs", lambda: c.get_run(rid))

    differential(backends, scenario)


def test_pyfunc_log_model_and_autolog(backends):
    sklearn = pytest.importorskip("sklearn.linear_model")

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input

    def scenario(c, rec):
        mlflow.set_experiment("flavors")
        with mlflow.start_run(run_name="pyfunc") as run:
            info = mlflow.pyfunc.log_model(name="echo", python_model=Echo(), input_example=pd.DataFrame({"a": [1]}))
        rec("logged model", lambda: c.get_logged_model(info.model_id))
        loaded = mlflow.pyfunc.load_model(info.model_uri)
        rec("predict", lambda: loaded.predict(pd.DataFrame({"a": [5]}))["a"].tolist())
        rec("run", lambda: c.get_run(run.info.run_id))
        mlflow.sklearn.autolog(log_models=False, log_datasets=False)
        try:
            with mlflow.start_run(run_name="auto") as auto:
                sklearn.LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
        finally:
            mlflow.sklearn.autolog(disable=True)
        got = c.get_run(auto.info.run_id)
        rec("autolog params", lambda: got.data.params)
        rec("autolog metric keys", lambda: sorted(got.data.metrics))

    differential(backends, scenario)


def test_update_run_info_statuses(backends):
    def scenario(c, rec):
        rid = c.create_run("0", run_name="s").info.run_id
        store = c._tracking_client.store
        for status in (RunStatus.SCHEDULED, RunStatus.KILLED, RunStatus.FINISHED):
            rec(f"status {status}", lambda s=status: store.update_run_info(rid, s, 5, None).status)
        rec("rename via update", lambda: store.update_run_info(rid, RunStatus.FINISHED, 6, "renamed").run_name)
        rec("tag follows", lambda: c.get_run(rid).data.tags["mlflow.runName"])

    differential(backends, scenario)
