"""Registry differential suite: the same scenario through MlflowClient on sqlite:/// and lakehouse:///."""

from __future__ import annotations

import time

import mlflow
import pandas as pd
import pytest
from _registry_differential import registry_differential
from mlflow.entities.webhook import WebhookEvent, WebhookStatus

pytestmark = pytest.mark.filterwarnings("ignore")


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input * 2


def test_registered_models_crud_tags_rename_delete(backends):
    def scenario(c, rec):
        rec("create", lambda: c.create_registered_model("alpha", tags={"team": "ml"}, description="first"))
        rec("create again", lambda: c.create_registered_model("alpha"))
        rec("bad name", lambda: c.create_registered_model(""))
        rec("get", lambda: c.get_registered_model("alpha"))
        rec("get missing", lambda: c.get_registered_model("nope"))
        rec("update", lambda: c.update_registered_model("alpha", description="second"))
        rec("update missing", lambda: c.update_registered_model("nope", description="x"))
        rec("set tag", lambda: c.set_registered_model_tag("alpha", "k", "v"))
        rec("overwrite tag", lambda: c.set_registered_model_tag("alpha", "k", "v2"))
        rec("tag missing model", lambda: c.set_registered_model_tag("nope", "k", "v"))
        rec("delete tag", lambda: c.delete_registered_model_tag("alpha", "team"))
        rec("delete missing tag", lambda: c.delete_registered_model_tag("alpha", "team"))
        rec("after tags", lambda: c.get_registered_model("alpha"))
        c.create_registered_model("beta")
        rec("version", lambda: c.create_model_version("alpha", "s3://b/m", tags={"t": "1"}, description="v1"))
        rec("rename onto existing", lambda: c.rename_registered_model("alpha", "beta"))
        rec("rename to empty", lambda: c.rename_registered_model("alpha", ""))
        rec("rename", lambda: c.rename_registered_model("alpha", "gamma"))
        rec("old name gone", lambda: c.get_registered_model("alpha"))
        rec("renamed", lambda: c.get_registered_model("gamma"))
        rec("renamed version", lambda: c.get_model_version("gamma", 1))
        rec("delete", lambda: c.delete_registered_model("gamma"))
        rec("delete again", lambda: c.delete_registered_model("gamma"))
        rec("version of deleted", lambda: c.get_model_version("gamma", 1))
        rec("recreate", lambda: c.create_registered_model("gamma"))
        rec("search all", lambda: c.search_registered_models())

    registry_differential(backends, scenario)


def test_versions_stages_aliases(backends):
    def scenario(c, rec):
        c.create_registered_model("m")
        for i in range(4):
            rec(f"v{i + 1}", lambda i=i: c.create_model_version("m", f"s3://b/m{i}", run_link=f"l{i}"))
        rec("version of missing model", lambda: c.create_model_version("zz", "s3://b/x"))
        rec("get", lambda: c.get_model_version("m", 2))
        rec("get missing", lambda: c.get_model_version("m", 99))
        rec("get bad version", lambda: c.get_model_version("m", "abc"))
        rec("update", lambda: c.update_model_version("m", 2, description="hello"))
        rec("staging", lambda: c.transition_model_version_stage("m", 1, "staging"))
        rec("staging 2", lambda: c.transition_model_version_stage("m", 2, "Staging"))
        rec("prod archive", lambda: c.transition_model_version_stage("m", 3, "Production", True))
        rec("staging archive", lambda: c.transition_model_version_stage("m", 4, "Staging", True))
        rec("archive into None", lambda: c.transition_model_version_stage("m", 4, "None", True))
        rec("bad stage", lambda: c.transition_model_version_stage("m", 4, "Nope"))
        rec("latest", lambda: sorted(c.get_latest_versions("m"), key=lambda v: v.version))
        rec("latest staging", lambda: c.get_latest_versions("m", stages=["staging"]))
        rec("latest missing model", lambda: c.get_latest_versions("zz"))
        rec("alias", lambda: c.set_registered_model_alias("m", "champion", 3))
        rec("alias missing version", lambda: c.set_registered_model_alias("m", "x", 42))
        rec("alias reserved", lambda: c.set_registered_model_alias("m", "latest", 1))
        rec("alias bad", lambda: c.set_registered_model_alias("m", "v1", 1))
        rec("move alias", lambda: c.set_registered_model_alias("m", "champion", 4))
        rec("second alias", lambda: c.set_registered_model_alias("m", "backup", 4))
        rec("by alias", lambda: c.get_model_version_by_alias("m", "champion"))
        rec("by latest", lambda: c.get_model_version_by_alias("m", "latest"))
        rec("by missing alias", lambda: c.get_model_version_by_alias("m", "ghost"))
        rec("model with aliases", lambda: c.get_registered_model("m"))
        rec("delete alias", lambda: c.delete_registered_model_alias("m", "backup"))
        rec("delete missing alias", lambda: c.delete_registered_model_alias("m", "backup"))
        rec("set mv tag", lambda: c.set_model_version_tag("m", 1, "k", "v"))
        rec("set mv tag missing", lambda: c.set_model_version_tag("m", 9, "k", "v"))
        rec("delete mv tag", lambda: c.delete_model_version_tag("m", 1, "k"))
        rec("delete missing mv tag", lambda: c.delete_model_version_tag("m", 1, "k"))
        rec("delete version with alias", lambda: c.delete_model_version("m", 4))
        rec("deleted version", lambda: c.get_model_version("m", 4))
        rec("alias gone", lambda: c.get_model_version_by_alias("m", "champion"))
        rec("delete again", lambda: c.delete_model_version("m", 4))
        rec("next number skips deleted", lambda: c.create_model_version("m", "s3://b/m5"))
        rec("download uri", lambda: c.get_model_version_download_uri("m", 5))
        rec("model after", lambda: c.get_registered_model("m"))

    registry_differential(backends, scenario)


def test_search(backends):
    def scenario(c, rec):
        for name in ["a-one", "a-two", "b-three", "B-four"]:
            c.create_registered_model(name, tags={"kind": name[0].lower(), "n": name[-3:]})
            time.sleep(0.002)
        for i in range(7):
            c.create_model_version("a-one", f"s3://x/{i}", run_id=f"r{i % 2}", tags={"even": str(i % 2 == 0)})
            time.sleep(0.002)
        c.create_model_version("b-three", "s3://y/0", run_id="r0")
        for f in [
            "",
            "name = 'a-one'",
            "name != 'a-one'",
            "name LIKE 'a-%'",
            "name ILIKE 'b-%'",
            "name IN ('a-two', 'B-four')",
            "tags.kind = 'a'",
            "tags.kind != 'a'",
            "tags.n LIKE '%o'",
            "tags.kind = 'a' AND name LIKE '%two'",
            "tags.missing = 'x'",
            "version_number = 1",
            "description = 'x'",
            "name > 'a'",
            "name = ",
        ]:
            rec(f"models [{f}]", lambda f=f: c.search_registered_models(filter_string=f))
        for o in [
            ["name DESC"],
            ["last_updated_timestamp DESC"],
            ["timestamp ASC", "name DESC"],
            ["bogus"],
            ["name ASC", "name DESC"],
        ]:
            rec(f"models order {o}", lambda o=o: [m.name for m in c.search_registered_models(order_by=o)])
        pages, token = [], None
        while True:
            page = c.search_registered_models(max_results=3, page_token=token)
            pages.append([m.name for m in page])
            token = page.token
            if not token:
                break
        rec("models paged", lambda: pages)
        rec("models too many", lambda: c.search_registered_models(max_results=10**6))
        for f in [
            "",
            "name = 'a-one'",
            "run_id = 'r1'",
            "run_id IN ('r0')",
            "version_number >= 5",
            "version_number = 'x'",
            "tags.even = 'True'",
            "tags.even != 'True'",
            "source_path LIKE 's3://x/%'",
            "name = 'a-one' AND version_number < 3",
            "run_id IN ('r0', 'r1') AND tags.even = 'False'",
            "bogus = 1",
            "version_number LIKE '1'",
            "source_path IN ('s3://y/0')",
        ]:
            rec(f"versions [{f}]", lambda f=f: c.search_model_versions(filter_string=f))
        for o in [
            ["version_number ASC"],
            ["name ASC", "version_number ASC"],
            ["creation_timestamp DESC"],
            ["run_id ASC"],
            ["version_number ASC", "version_number DESC"],
        ]:
            rec(f"versions order {o}", lambda o=o: [(v.name, v.version) for v in c.search_model_versions(order_by=o)])
        pages, token = [], None
        while True:
            page = c.search_model_versions(
                "name = 'a-one'", max_results=3, page_token=token, order_by=["version_number ASC"]
            )
            pages.append([v.version for v in page])
            token = page.token
            if not token:
                break
        rec("versions paged", lambda: pages)
        rec("versions bad max", lambda: c.search_model_versions(max_results=0))
        rec("versions too many", lambda: c.search_model_versions(max_results=10**6))

    registry_differential(backends, scenario)


def test_log_model_register_and_load_by_stage_version_alias(backends):
    data = pd.DataFrame({"x": [1.0, 2.0]})

    def scenario(c, rec):
        with mlflow.start_run(run_name="train") as run:
            info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name="echo")
        rec("log_model registered v1", lambda: info.registered_model_version)
        rec("from runs uri", lambda: mlflow.register_model(f"runs:/{run.info.run_id}/model", "echo"))
        rec("from models uri", lambda: mlflow.register_model(info.model_uri, "echo"))
        rec("from missing logged model", lambda: mlflow.register_model("models:/m-" + "0" * 32, "echo"))
        rec("versions", lambda: c.search_model_versions("name = 'echo'", order_by=["version_number ASC"]))
        c.transition_model_version_stage("echo", 2, "Production")
        c.set_registered_model_alias("echo", "champion", 3)
        for uri in ["models:/echo/Production", "models:/echo/3", "models:/echo@champion", "models:/echo/latest"]:
            rec(f"load {uri}", lambda uri=uri: mlflow.pyfunc.load_model(uri).predict(data)["x"].tolist())
        rec("load missing stage", lambda: mlflow.pyfunc.load_model("models:/echo/Staging"))
        rec("load missing alias", lambda: mlflow.pyfunc.load_model("models:/echo@nope"))
        rec("copy version", lambda: c.copy_model_version("models:/echo/1", "echo-copy"))

    registry_differential(backends, scenario)


def test_webhook_crud_and_url_validation(backends, monkeypatch):
    def scenario(c, rec):
        ev = [WebhookEvent("model_version", "created"), WebhookEvent("model_version_alias", "created")]
        rec("private url refused", lambda: c.create_webhook("h", "https://127.0.0.1/x", events=ev))
        rec("http refused", lambda: c.create_webhook("h", "http://8.8.8.8/x", events=ev))
        rec("no events", lambda: c.create_webhook("h", "https://8.8.8.8/x", events=[]))
        rec("bad event", lambda: c.create_webhook("h", "https://8.8.8.8/x", events=["model_version.exploded"]))
        w1 = rec("create", lambda: c.create_webhook("h1", "https://8.8.8.8/a", events=ev, secret="s", description="d"))
        time.sleep(0.01)
        w2 = rec(
            "create 2",
            lambda: c.create_webhook(
                "h2", "https://8.8.4.4/b", events=["registered_model.created"], status=WebhookStatus.DISABLED
            ),
        )
        rec("get", lambda: c.get_webhook(w1.webhook_id))
        rec("get missing", lambda: c.get_webhook("nope"))
        rec("list", lambda: c.list_webhooks())
        rec("list paged", lambda: c.list_webhooks(max_results=1))
        rec("list bad max", lambda: c.list_webhooks(max_results=5000))
        rec(
            "update",
            lambda: c.update_webhook(
                w1.webhook_id, name="h1b", status=WebhookStatus.DISABLED, events=["model_version_tag.set"]
            ),
        )
        rec("update bad url", lambda: c.update_webhook(w1.webhook_id, url="ftp://x"))
        rec("update missing", lambda: c.update_webhook("nope", name="x"))
        rec("delete", lambda: c.delete_webhook(w2.webhook_id))
        rec("get deleted", lambda: c.get_webhook(w2.webhook_id))
        rec("delete again", lambda: c.delete_webhook(w2.webhook_id))
        rec("list after", lambda: c.list_webhooks())

    registry_differential(backends, scenario)
