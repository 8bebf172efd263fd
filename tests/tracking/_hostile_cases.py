"""The hostile-input catalogue of the tracking store: one `Hostile` per class of bad input, each a store call (a
`_store_contract_cases.Case`, run on sqlite:/// and lakehouse:///) and, where MLflow's REST API has a route for it,
the same request sent to `mlflow server` (`Rest`).

A case's id names its class (what makes the input hostile), not a variant: the catalogue covers names and artifact
locations that try to leave the lake root, filter strings crafted as SQL injections or garbage, order_by
injections, wrong types, control characters, NaN/inf, values beyond MLflow's limits, out-of-range times and steps,
duplicate keys in a batch, unknown and malformed ids, deleted entities, forged page tokens and unknown statuses.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from _store_contract_cases import (
    HEX,
    MISSING_MODEL,
    Build,
    Case,
    Ctx,
    Fmt,
    Name,
    Ref,
    Step,
    c,
    deleted_exp,
    deleted_run,
    do,
    exp,
    model,
    run,
)
from mlflow.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    Param,
    RunTag,
    TraceInfo,
    TraceLocation,
    TraceState,
    ViewType,
)


@dataclasses.dataclass(frozen=True)
class Rest:
    """One REST request: `verb`, `path` (under /api/2.0/mlflow/ unless it starts with /), a JSON body (POST,
    PATCH) or query parameters (GET, DELETE); placeholders resolved as the store case's (`Ref`, `Fmt`, ...)."""

    verb: str
    path: Any
    body: Any = None


@dataclasses.dataclass(frozen=True)
class Hostile:
    """A class of hostile input: the store call (`case`) and, if the REST API has a route for it, the request."""

    case: Case
    rest: Rest | None = None
    stricter: str | None = None
    """Why our store refuses what MLflow's SQL store accepts (it stores whatever SQLite's dynamic typing takes)."""
    parity: str | None = None
    """Why our store gives MLflow's SQL store's answer although that is INTERNAL_ERROR (the contract pins it)."""
    undefined: str | None = None
    """Why MLflow's SQL store's error is an accident of its database, not an answer (ours refuses in its words)."""

    @property
    def id(self) -> str:
        return f"{self.case.method}[{self.case.id}]"


def h(
    method: str,
    case_id: str,
    *args: Any,
    rest: Rest | None = None,
    stricter: str | None = None,
    parity: str | None = None,
    undefined: str | None = None,
    **kw: Any,
) -> Hostile:
    return Hostile(c(method, case_id, *args, **kw), rest, stricter, parity, undefined)


def post(path: str, **body: Any) -> Rest:
    return Rest("POST", path, body)


def get(path: str, **params: Any) -> Rest:
    return Rest("GET", path, params)


E, R, M, T = Ref("exp"), Ref("run"), Ref("model"), Ref("trace")
TRACE_MISSING = "tr-" + "0" * 32
UUID_MISSING = "0" * 8 + "-0000-0000-0000-" + "0" * 12
LONG_KEY = "k" * 251
PARAM_NUMBER = (
    "needs tests/tracking/_store_contract_cases.py's log_param[value not a string] case marked xfail (the SQL store's "
    "bare TypeError, which it pins), then tracking/_store_run_data.log_param refusing a number as log_batch does"
)
NAN_MILLIS = "SQLite stores it as given in an INTEGER column (dynamic typing); MLflow's times are int64 milliseconds"
INT64_OVER = 2**63
INJECTIONS = {
    "or 1=1 comment": "params.p = 'x' OR 1=1 --",
    "quote breaks out": "params.p = 'x'' OR ''1''=''1'",
    "stacked drop table": "metrics.m > 1; DROP TABLE runs",
    "unbalanced quote": "params.p = 'x",
    "unbalanced backtick": "params.`p = 'x'",
    "backticked injection": "params.`p` = 'x' --",
    "union select": "params.p = 'x' UNION SELECT * FROM runs",
    "comment only": "-- comment",
    "subquery": "metrics.m > (SELECT 1)",
    "null byte": "params.p = 'x\x00'",
}
GARBAGE = {
    "bare word": "garbage",
    "operator only": "=",
    "number only": "42",
    "empty comparison": "metrics.m >",
    "unknown comparator": "metrics.m ~= 1",
    "double comparator": "metrics.m >> 1",
    "unknown entity type": "nope.x = 'a'",
    "unknown attribute": "attributes.nope = 'a'",
    "LIKE on a metric": "metrics.m LIKE '1'",
    "string against metric": "metrics.m > 'abc'",
    "number against param": "params.p = 1",
    "IN on a metric": "metrics.m IN (1, 2)",
    "nested parentheses": "((metrics.m > 1))",
}
ORDER_BY = {
    "order_by stacked drop": ["metrics.m; DROP TABLE runs"],
    "order_by two directions": ["metrics.m ASC DESC"],
    "order_by unknown entity": ["nope.m"],
    "order_by sql expression": ["attributes.start_time, 1=1"],
    "order_by quoted injection": ["params.`p` DESC'--"],
}


def trace(key: str = "trace", exp_key: str = "exp", trace_id: str = "tr-" + "1" * 32) -> Step:
    """A trace (`start_trace` without spans) in the experiment `exp_key` (created first if missing)."""

    def step(x: Ctx) -> None:
        if exp_key not in x.refs:
            exp(exp_key, name=exp_key)(x)
        info = TraceInfo(
            trace_id=trace_id,
            trace_location=TraceLocation.from_experiment_id(x.refs[exp_key]),
            request_time=1000,
            execution_duration=7,
            state=TraceState.OK,
            trace_metadata={},
            tags={"mlflow.traceName": "t"},
        )
        x.refs[key] = x.t.start_trace(info).trace_id

    return step


def token_of_other_query(x: Ctx) -> None:
    """A page token of a run search on another filter (two runs, one per page)."""
    x.refs["token"] = x.t._search_runs([x.refs["exp"]], "attributes.run_name = 'r'", ViewType.ALL, 1, None, None)[1]


def runs_token(x: Ctx) -> None:
    token = x.t._search_runs([x.refs["exp"]], None, ViewType.ALL, 1, None, None)[1]
    x.refs["token"] = token.decode() if isinstance(token, bytes) else token  # the SQL store's is bytes


def forged(payload: Any) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def _search_runs(case_id: str, filter_string: Any, *, order_by: Any = None, token: Any = None, **kw: Any) -> Hostile:
    rest = post("runs/search", experiment_ids=[E], filter=filter_string, order_by=order_by, page_token=token)
    if not isinstance(filter_string, (str, type(None))) or not isinstance(order_by, (list, type(None))):
        rest = post("runs/search", experiment_ids=[E], filter=filter_string, order_by=order_by)
    kw.setdefault("setup", run())
    return h("_search_runs", case_id, [E], filter_string, ViewType.ALL, 1000, order_by, token, rest=rest, **kw)


def _metric(case_id: str, key: Any, value: Any, ts: Any, step: Any, **kw: Any) -> Hostile:
    rest = post("runs/log-metric", run_id=R, key=key, value=value, timestamp=ts, step=step)
    return h("log_metric", case_id, R, Metric(key, value, ts, step), setup=run(), rest=rest, **kw)


def _param(case_id: str, key: Any, value: Any, **kw: Any) -> Hostile:
    kw.setdefault("setup", run())
    rest = post("runs/log-parameter", run_id=R, key=key, value=value)
    return h("log_param", case_id, R, Param(key, value), rest=rest, **kw)


def _tag(case_id: str, key: Any, value: Any, **kw: Any) -> Hostile:
    kw.setdefault("setup", run())
    return h("set_tag", case_id, R, RunTag(key, value), rest=post("runs/set-tag", run_id=R, key=key, value=value), **kw)


def _exp_name(case_id: str, name: Any, **kw: Any) -> Hostile:
    return h("create_experiment", case_id, name, None, None, rest=post("experiments/create", name=name), **kw)


def _artifact_location(case_id: str, location: Any, **kw: Any) -> Hostile:
    rest = post("experiments/create", name=Name("e"), artifact_location=location)
    return h(
        "create_experiment",
        case_id,
        Name("e"),
        location,
        None,
        rest=rest,
        after=lambda x: x.t.get_experiment_by_name(x.name("e")),
        **kw,
    )


def _batch(case_id: str, metrics: Any = (), params: Any = (), tags: Any = (), **kw: Any) -> Hostile:
    def js(items: Any, fields: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{f: getattr(i, f) for f in fields} for i in items]

    rest = post(
        "runs/log-batch",
        run_id=R,
        metrics=js(metrics, ("key", "value", "timestamp", "step")),
        params=js(params, ("key", "value")),
        tags=js(tags, ("key", "value")),
    )
    kw.setdefault("setup", run())
    kw.setdefault("after", lambda x: x.t.get_run(x.refs["run"]).data)
    return h("log_batch", case_id, R, list(metrics), list(params), list(tags), rest=rest, **kw)


def _many(n: int, make: Any) -> list[Any]:
    return [make(i) for i in range(n)]


# fmt: off
HOSTILE: list[Hostile] = [
    # experiment names that look like paths out of the lake, and names of the wrong type or shape
    _exp_name("name dot-dot path", "../../outside"),
    _exp_name("name absolute path", "/etc/passwd"),
    _exp_name("name url-encoded dot-dot", "%2e%2e%2f%2e%2e%2foutside"),
    _exp_name("name file uri", "file:///etc"),
    _exp_name("name null byte", "a\x00b"),
    _exp_name("name control characters", "a\x07\x1b[31mb\r\n"),
    _exp_name("name only whitespace", "   "),
    _exp_name("name None", None),
    _exp_name("name list", ["a"]),
    _exp_name("name dict", {"a": 1}),
    _exp_name("name bytes", b"name"),
    _exp_name("name sql injection", "x'); DROP TABLE experiments; --"),
    # artifact locations outside the lake root
    _artifact_location("location dot-dot relative", "../../outside"),
    _artifact_location("location absolute elsewhere", "/etc"),
    _artifact_location("location file uri elsewhere", "file:///etc"),
    _artifact_location("location url-encoded dot-dot", "file:///tmp/%2e%2e/%2e%2e/etc"),
    _artifact_location("location too long", "s3://bucket/" + "a" * 10_000),
    _artifact_location("location list", ["s3://bucket/a"]),
    # experiment ids: malformed, out of range, unknown, deleted
    h("get_experiment", "id not a number", "abc", rest=get("experiments/get", experiment_id="abc")),
    h("get_experiment", "id negative", "-1", rest=get("experiments/get", experiment_id="-1")),
    h("get_experiment", "id beyond int64", str(INT64_OVER), rest=get("experiments/get", experiment_id=str(INT64_OVER))),
    h("get_experiment", "id path traversal", "../0", rest=get("experiments/get", experiment_id="../0")),
    h("get_experiment", "id unknown well-formed", "987654", rest=get("experiments/get", experiment_id="987654")),
    h("get_experiment", "id empty", "", rest=get("experiments/get", experiment_id="")),
    h("get_experiment", "id int not str", 0),
    h("get_experiment_by_name", "name injection", "' OR 1=1 --", rest=get("experiments/get-by-name", experiment_name="' OR 1=1 --")),
    h("get_experiment_by_name", "name like wildcard", "%", rest=get("experiments/get-by-name", experiment_name="%")),
    h("rename_experiment", "rename deleted", E, Name("new"), setup=deleted_exp(), rest=post("experiments/update", experiment_id=E, new_name=Name("new"))),
    h("rename_experiment", "rename to None", E, None, setup=exp(), rest=post("experiments/update", experiment_id=E, new_name=None)),
    h("rename_experiment", "rename to list", E, ["x"], setup=exp(), rest=post("experiments/update", experiment_id=E, new_name=["x"])),
    h("delete_experiment", "delete deleted", E, setup=deleted_exp(), rest=post("experiments/delete", experiment_id=E)),
    h("delete_experiment", "delete malformed id", "1 OR 1=1", rest=post("experiments/delete", experiment_id="1 OR 1=1")),
    h("restore_experiment", "restore active", E, setup=exp(), rest=post("experiments/restore", experiment_id=E)),
    h("restore_experiment", "restore unknown", "987654", rest=post("experiments/restore", experiment_id="987654")),
    h("set_experiment_tag", "exp tag key too long", E, ExperimentTag(LONG_KEY, "v"), setup=exp(), rest=post("experiments/set-experiment-tag", experiment_id=E, key=LONG_KEY, value="v")),
    h("set_experiment_tag", "exp tag key dot-dot", E, ExperimentTag("../x", "v"), setup=exp(), rest=post("experiments/set-experiment-tag", experiment_id=E, key="../x", value="v")),
    h("set_experiment_tag", "exp tag key None", E, ExperimentTag(None, "v"), setup=exp(), rest=post("experiments/set-experiment-tag", experiment_id=E, key=None, value="v")),
    h("set_experiment_tag", "exp tag value dict", E, ExperimentTag("k", {"a": 1}), setup=exp(), rest=post("experiments/set-experiment-tag", experiment_id=E, key="k", value={"a": 1})),
    h("set_experiment_tag", "exp tag on deleted", E, ExperimentTag("k", "v"), setup=deleted_exp(), rest=post("experiments/set-experiment-tag", experiment_id=E, key="k", value="v")),
    h("delete_experiment_tag", "exp tag delete unknown key", E, "nope", setup=exp(), rest=post("experiments/delete-experiment-tag", experiment_id=E, key="nope")),
    # runs: unknown or deleted experiments, out-of-range times, wrong types
    h("create_run", "run in unknown experiment", "987654", "u", 1000, [], "r", rest=post("runs/create", experiment_id="987654", start_time=1000)),
    h("create_run", "run in malformed experiment id", "abc", "u", 1000, [], "r", rest=post("runs/create", experiment_id="abc", start_time=1000)),
    h("create_run", "run in deleted experiment", E, "u", 1000, [], "r", setup=deleted_exp(), rest=post("runs/create", experiment_id=E, start_time=1000)),
    h("create_run", "start_time negative", E, "u", -1, [], "r", setup=exp(), rest=post("runs/create", experiment_id=E, start_time=-1)),
    h("create_run", "start_time beyond int64", E, "u", INT64_OVER, [], "r", setup=exp(), rest=post("runs/create", experiment_id=E, start_time=INT64_OVER)),
    h("create_run", "start_time NaN", E, "u", float("nan"), [], "r", setup=exp(), stricter=NAN_MILLIS),
    h("create_run", "start_time string", E, "u", "yesterday", [], "r", setup=exp(), stricter=NAN_MILLIS, rest=post("runs/create", experiment_id=E, start_time="yesterday")),
    h("create_run", "run name list", E, "u", 1000, [], ["r"], setup=exp(), rest=post("runs/create", experiment_id=E, start_time=1000, run_name=["r"])),
    h("create_run", "run tag key too long", E, "u", 1000, [RunTag(LONG_KEY, "v")], "r", setup=exp(), stricter="the SQL store's create_run does not check tag keys against MLflow's 250-character limit (its set_tag does)", rest=post("runs/create", experiment_id=E, start_time=1000, tags=[{"key": LONG_KEY, "value": "v"}])),
    h("create_run", "run tags duplicate keys", E, "u", 1000, [RunTag("k", "1"), RunTag("k", "2")], "r", setup=exp(), rest=post("runs/create", experiment_id=E, start_time=1000, tags=[{"key": "k", "value": "1"}, {"key": "k", "value": "2"}])),
    h("get_run", "run id path traversal", "../../etc/passwd", rest=get("runs/get", run_id="../../etc/passwd")),
    h("get_run", "run id injection", "' OR 1=1 --", rest=get("runs/get", run_id="' OR 1=1 --")),
    h("get_run", "run id unknown well-formed", HEX, rest=get("runs/get", run_id=HEX)),
    h("get_run", "run id empty", "", rest=get("runs/get", run_id="")),
    h("get_run", "run id None", None),
    h("update_run_info", "status unknown number", R, 99, None, None, setup=run(), parity="RunStatus.to_string's error, INTERNAL_ERROR, as the SQL store (test_store_contract pins it; over REST the status is a proto enum, refused with a 400 before the store)", rest=post("runs/update", run_id=R, status="DONE")),
    h("update_run_info", "status string", R, "FINISHED", None, None, setup=run(), parity="RunStatus.to_string's error, INTERNAL_ERROR, as the SQL store (test_store_contract pins it; over REST the status is a proto enum, refused with a 400 before the store)"),
    h("update_run_info", "end_time beyond int64", R, 3, INT64_OVER, None, setup=run(), rest=post("runs/update", run_id=R, status="FINISHED", end_time=INT64_OVER)),
    h("update_run_info", "end_time infinite", R, 3, float("inf"), None, setup=run(), stricter=NAN_MILLIS),
    h("update_run_info", "update deleted run", R, 3, 2000, None, setup=deleted_run(), rest=post("runs/update", run_id=R, status="FINISHED", end_time=2000)),
    h("delete_run", "delete unknown run", HEX, rest=post("runs/delete", run_id=HEX)),
    h("delete_run", "delete deleted run", R, setup=deleted_run(), rest=post("runs/delete", run_id=R)),
    h("restore_run", "restore active run", R, setup=run(), rest=post("runs/restore", run_id=R)),
    # params
    _param("param key too long", LONG_KEY, "v"),
    _param("param value too long", "p", "v" * 6001),
    _param("param key dot-dot", "../p", "v"),
    _param("param key absolute", "/p", "v"),
    _param("param key null byte", "p\x00", "v"),
    _param("param key newline", "p\nq", "v"),
    _param("param key empty", "", "v"),
    _param("param value None", "p", None),
    _param("param value NaN", "p", float("nan"), xfail=PARAM_NUMBER),
    _param("param key list", ["p"], "v"),
    _param("param changed value", "p", "2", setup=[run(), do(lambda x: x.t.log_param(x.refs["run"], Param("p", "1")))]),
    _param("param on deleted run", "p", "v", setup=deleted_run()),
    h("log_param", "param on unknown run", HEX, Param("p", "v"), rest=post("runs/log-parameter", run_id=HEX, key="p", value="v")),
    # metrics
    _metric("metric key too long", LONG_KEY, 1.0, 1, 0),
    _metric("metric key dot-dot", "a/../../m", 1.0, 1, 0),
    _metric("metric key control char", "m\x07", 1.0, 1, 0),
    _metric("metric value string", "m", "abc", 1, 0),
    _metric("metric value None", "m", None, 1, 0),
    _metric("metric value bool", "m", True, 1, 0),
    _metric("metric timestamp NaN", "m", 1.0, float("nan"), 0),
    _metric("metric timestamp infinite", "m", 1.0, float("inf"), 0, stricter=NAN_MILLIS),
    _metric("metric timestamp negative", "m", 1.0, -1, 0),
    _metric("metric timestamp beyond int64", "m", 1.0, INT64_OVER, 0),
    _metric("metric step NaN", "m", 1.0, 1, float("nan")),
    _metric("metric step fractional", "m", 1.0, 1, 1.5, stricter="SQLite stores 1.5 in the INTEGER step column; a step is a whole number"),
    _metric("metric step beyond int64", "m", 1.0, 1, INT64_OVER),
    _metric("metric step negative", "m", 1.0, 1, -5),
    _metric("metric step string", "m", 1.0, 1, "one"),
    h("log_metric", "metric on deleted run", R, Metric("m", 1.0, 1, 0), setup=deleted_run(), rest=post("runs/log-metric", run_id=R, key="m", value=1.0, timestamp=1, step=0)),
    # tags
    _tag("tag key too long", LONG_KEY, "v"),
    _tag("tag value too long", "k", "v" * 8001),
    _tag("tag key dot-dot", "..", "v"),
    _tag("tag key carriage return", "k\r", "v"),
    _tag("tag value null byte", "k", "v\x00w"),
    _tag("tag value bytes", "k", b"v", stricter="SQLite stores bytes in the TEXT value column; a tag value is a string"),
    _tag("tag on deleted run", "k", "v", setup=deleted_run()),
    h("delete_tag", "delete unknown tag", R, "nope", setup=run(), rest=post("runs/delete-tag", run_id=R, key="nope")),
    h("delete_tag", "delete tag of deleted run", R, "k", setup=deleted_run(), rest=post("runs/delete-tag", run_id=R, key="k")),
    # batches: limits, duplicates, one bad item among good ones (nothing of the batch written)
    _batch("batch 1001 metrics", metrics=_many(1001, lambda i: Metric("m", float(i), 1, i))),
    _batch("batch 101 params", params=_many(101, lambda i: Param(f"p{i}", "v"))),
    _batch("batch 101 tags", tags=_many(101, lambda i: RunTag(f"t{i}", "v"))),
    _batch("batch over 1000 entries in all", metrics=_many(950, lambda i: Metric("m", 1.0, 1, i)), params=_many(60, lambda i: Param(f"p{i}", "v"))),
    _batch("batch duplicate param keys, values differ", params=[Param("p", "1"), Param("p", "2")]),
    _batch("batch duplicate param keys, same value", params=[Param("p", "1"), Param("p", "1")]),
    _batch("batch duplicate tag keys", tags=[RunTag("t", "1"), RunTag("t", "2")]),
    _batch("batch duplicate metric points", metrics=[Metric("m", 1.0, 1, 0), Metric("m", 1.0, 1, 0)]),
    _batch("batch one bad metric among good", metrics=[Metric("ok", 1.0, 1, 0), Metric("bad", "x", 1, 0)], params=[Param("p", "1")]),
    _batch("batch one bad param among good", params=[Param("p", "1"), Param(LONG_KEY, "v")], tags=[RunTag("t", "1")]),
    _batch("batch param overwrite", params=[Param("p", "2")], setup=[run(), do(lambda x: x.t.log_param(x.refs["run"], Param("p", "1")))]),
    _batch("batch on deleted run", params=[Param("p", "1")], setup=deleted_run(), after=None),
    h("log_batch", "batch metrics not a list", R, "m", [], [], setup=run(), rest=post("runs/log-batch", run_id=R, metrics="m")),
    h("log_batch", "batch on malformed run id", "../x", [], [Param("p", "1")], [], rest=post("runs/log-batch", run_id="../x", params=[{"key": "p", "value": "1"}])),
    # metric history
    h("get_metric_history", "history of unknown run", HEX, "m", rest=get("metrics/get-history", run_id=HEX, metric_key="m")),
    h("get_metric_history", "history max_results negative", R, "m", -1, setup=run(), rest=get("metrics/get-history", run_id=R, metric_key="m", max_results=-1)),
    h("get_metric_history", "history forged page token", R, "m", 10, "garbage", setup=run(), rest=get("metrics/get-history", run_id=R, metric_key="m", max_results=10, page_token="garbage")),
    # run search: injections, garbage grammar, order_by injections, huge filters, limits, tokens, view types
    *[_search_runs(f"filter {k}", v) for k, v in INJECTIONS.items()],
    *[_search_runs(f"filter {k}", v) for k, v in GARBAGE.items()],
    *[_search_runs(k, None, order_by=v) for k, v in ORDER_BY.items()],
    _search_runs("filter huge", " AND ".join(f"metrics.m{i} > 0.5" for i in range(2000))),
    _search_runs("filter very long literal", "params.p = '" + "x" * 100_000 + "'"),
    _search_runs("filter wrong type dict", {"params.p": "x"}),
    _search_runs("order_by not a list", None, order_by="metrics.m"),
    _search_runs("page token forged garbage", None, token="garbage"),
    _search_runs("page token forged offset", None, token=forged({"offset": -5}), stricter="MLflow's token parser takes a negative offset, and a page then starts from the end"),
    _search_runs("page token forged huge offset", None, token=forged({"offset": INT64_OVER})),
    _search_runs("page token of another query", "attributes.run_name = 'a'", token=Ref("token"), setup=[run("a", name="a"), run("b", name="b"), token_of_other_query]),
    h("_search_runs", "max_results 50001", [E], None, ViewType.ALL, 50001, None, None, setup=exp(), rest=post("runs/search", experiment_ids=[E], max_results=50001)),
    h("_search_runs", "max_results negative", [E], None, ViewType.ALL, -1, None, None, setup=exp(), rest=post("runs/search", experiment_ids=[E], max_results=-1)),
    h("_search_runs", "max_results string", [E], None, ViewType.ALL, "10", None, None, setup=exp(), rest=post("runs/search", experiment_ids=[E], max_results="ten")),
    h("_search_runs", "view type unknown", [E], None, 99, 1000, None, None, setup=exp(), rest=post("runs/search", experiment_ids=[E], run_view_type="SOMETIMES")),
    h("_search_runs", "experiment ids malformed", ["abc"], None, ViewType.ALL, 1000, None, None, rest=post("runs/search", experiment_ids=["abc"])),
    h("_search_runs", "experiment ids not a list", "0", None, ViewType.ALL, 1000, None, None, rest=post("runs/search", experiment_ids="0")),
    # experiment search
    h("search_experiments", "exp filter injection", ViewType.ALL, 1000, "name = 'x' OR 1=1 --", rest=post("experiments/search", filter="name = 'x' OR 1=1 --")),
    h("search_experiments", "exp filter stacked drop", ViewType.ALL, 1000, "name = 'x'; DROP TABLE experiments", rest=post("experiments/search", filter="name = 'x'; DROP TABLE experiments")),
    h("search_experiments", "exp filter unknown comparator", ViewType.ALL, 1000, "name <> 'x'", rest=post("experiments/search", filter="name <> 'x'")),
    h("search_experiments", "exp order_by injection", ViewType.ALL, 1000, None, ["name; DROP TABLE experiments"], rest=post("experiments/search", order_by=["name; DROP TABLE experiments"])),
    h("search_experiments", "exp page token from run search", ViewType.ALL, 1000, None, None, Ref("token"), setup=[run("a", name="a"), run("b", name="b"), runs_token], fresh=True, rest=post("experiments/search", page_token=Ref("token"))),
    h("search_experiments", "exp view type unknown", 99, 1000, rest=post("experiments/search", view_type="SOMETIMES")),
    # logged models
    h("create_logged_model", "model name dot-dot", E, "../../m", setup=exp(), rest=post("logged-models", experiment_id=E, name="../../m")),
    h("create_logged_model", "model name url-encoded", E, "%2e%2e%2fm", setup=exp(), rest=post("logged-models", experiment_id=E, name="%2e%2e%2fm")),
    h("create_logged_model", "model in deleted experiment", E, "m", setup=deleted_exp(), rest=post("logged-models", experiment_id=E, name="m")),
    h("create_logged_model", "model tag key too long", E, "m", None, [LoggedModelTag(LONG_KEY, "v")], setup=exp(), rest=post("logged-models", experiment_id=E, name="m", tags=[{"key": LONG_KEY, "value": "v"}])),
    h("create_logged_model", "model param value too long", E, "m", None, None, [LoggedModelParameter("p", "v" * 6001)], setup=exp(), rest=post("logged-models", experiment_id=E, name="m", params=[{"key": "p", "value": "v" * 6001}])),
    h("get_logged_model", "model id malformed", "../m", rest=Rest("GET", "logged-models/%2E%2E")),
    h("get_logged_model", "model id unknown", MISSING_MODEL, rest=Rest("GET", f"logged-models/{MISSING_MODEL}")),
    h("finalize_logged_model", "model status unknown", M, 99, setup=model(), rest=Rest("PATCH", Fmt("logged-models/{model}"), {"model_id": M, "status": "SOMETIMES"})),
    h("finalize_logged_model", "finalize deleted model", M, LoggedModelStatus.READY, setup=[model(), do(lambda x: x.t.delete_logged_model(x.refs["model"]))], rest=Rest("PATCH", Fmt("logged-models/{model}"), {"model_id": M, "status": "LOGGED_MODEL_READY"})),
    h("set_logged_model_tags", "model tag value too long", M, [LoggedModelTag("k", "v" * 8001)], setup=model(), rest=Rest("PATCH", Fmt("logged-models/{model}/tags"), {"tags": [{"key": "k", "value": "v" * 8001}]})),
    h("delete_logged_model_tag", "model tag key dot-dot", M, "..", setup=model(), rest=Rest("DELETE", Fmt("logged-models/{model}/tags/%2E%2E"))),
    h("log_logged_model_params", "model params duplicate keys", M, [LoggedModelParameter("p", "1"), LoggedModelParameter("p", "2")], setup=model(), rest=post(Fmt("logged-models/{model}/params"), params=[{"key": "p", "value": "1"}, {"key": "p", "value": "2"}])),
    h("search_logged_models", "model filter injection", [E], "name = 'x' OR 1=1", setup=exp(), rest=post("logged-models/search", experiment_ids=[E], filter="name = 'x' OR 1=1")),
    h("search_logged_models", "model order_by injection", [E], None, None, None, [{"field_name": "name; DROP TABLE x"}], setup=exp(), rest=post("logged-models/search", experiment_ids=[E], order_by=[{"field_name": "name; DROP TABLE x"}])),
    h("search_logged_models", "model page token forged", [E], None, None, None, None, forged({"offset": -1}), setup=exp(), rest=post("logged-models/search", experiment_ids=[E], page_token=forged({"offset": -1}))),
    # traces
    h("get_trace_info", "trace id unknown", TRACE_MISSING, rest=Rest("GET", f"/api/3.0/mlflow/traces/{TRACE_MISSING}")),
    h("get_trace_info", "trace id path traversal", "../../x", rest=Rest("GET", "/api/3.0/mlflow/traces/%2E%2E")),
    h("set_trace_tag", "trace tag key too long", T, LONG_KEY, "v", setup=trace(), rest=Rest("PATCH", Fmt("/api/3.0/mlflow/traces/{trace}/tags"), {"key": LONG_KEY, "value": "v"})),
    h("set_trace_tag", "trace tag on unknown trace", TRACE_MISSING, "k", "v", rest=Rest("PATCH", f"/api/3.0/mlflow/traces/{TRACE_MISSING}/tags", {"key": "k", "value": "v"})),
    h("delete_trace_tag", "trace tag delete unknown key", T, "nope", setup=trace(), rest=Rest("DELETE", Fmt("/api/3.0/mlflow/traces/{trace}/tags"), {"key": "nope"})),
    h("search_traces", "trace filter injection", experiment_ids=[E], filter_string="trace.status = 'OK' OR 1=1", setup=trace(), rest=post("/api/3.0/mlflow/traces/search", locations=[{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": E}}], filter="trace.status = 'OK' OR 1=1")),
    h("search_traces", "trace filter garbage", experiment_ids=[E], filter_string="garbage ~~ 1", setup=trace(), rest=post("/api/3.0/mlflow/traces/search", locations=[{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": E}}], filter="garbage ~~ 1")),
    h("search_traces", "trace order_by injection", experiment_ids=[E], order_by=["timestamp_ms; DROP TABLE traces"], setup=trace(), rest=post("/api/3.0/mlflow/traces/search", locations=[{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": E}}], order_by=["timestamp_ms; DROP TABLE traces"])),
    h("search_traces", "trace page token forged", experiment_ids=[E], page_token="garbage", setup=trace(), rest=post("/api/3.0/mlflow/traces/search", locations=[{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": E}}], page_token="garbage")),
    h("delete_traces", "delete traces without a criterion", E, setup=trace(), rest=post("/api/3.0/mlflow/traces/delete-traces", experiment_id=E)),
    h("delete_traces", "delete traces max_traces zero", E, 2000, 0, setup=trace(), rest=post("/api/3.0/mlflow/traces/delete-traces", experiment_id=E, max_timestamp_millis=2000, max_traces=0)),
    h("link_traces_to_run", "link unknown trace", [TRACE_MISSING], R, setup=run(), rest=post("traces/link-to-run", trace_ids=[TRACE_MISSING], run_id=R)),
    h("link_traces_to_run", "link to deleted run", [T], R, setup=[*deleted_run(), trace()], rest=post("traces/link-to-run", trace_ids=[T], run_id=R)),
    h("set_trace_tag", "trace tag value None", T, "k", None, setup=trace(), rest=Rest("PATCH", Fmt("/api/3.0/mlflow/traces/{trace}/tags"), {"key": "k"})),
    h("set_trace_tag", "trace tag value too long", T, "k", "v" * 8001, setup=trace(), rest=Rest("PATCH", Fmt("/api/3.0/mlflow/traces/{trace}/tags"), {"key": "k", "value": "v" * 8001})),
    h("search_traces", "trace max_results huge", experiment_ids=[E], max_results=50001, setup=trace(), rest=post("/api/3.0/mlflow/traces/search", locations=[{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": E}}], max_results=50001)),
    h("create_experiment", "exp tags duplicate keys", Name("e"), None, [ExperimentTag("k", "1"), ExperimentTag("k", "2")], undefined="the SQL store reports its database's duplicate-tag refusal as RESOURCE_ALREADY_EXISTS 'Experiment(name=...) already exists', for a name that does not exist", rest=post("experiments/create", name=Name("e"), tags=[{"key": "k", "value": "1"}, {"key": "k", "value": "2"}])),
    h("delete_experiment_tag", "exp tag delete key None", E, None, setup=exp(), rest=post("experiments/delete-experiment-tag", experiment_id=E)),
    h("get_metric_history", "history metric key None", R, None, setup=run(), rest=get("metrics/get-history", run_id=R)),
    h("set_logged_model_tags", "model tag value None", M, [LoggedModelTag("k", None)], setup=model(), rest=Rest("PATCH", Fmt("logged-models/{model}/tags"), {"tags": [{"key": "k"}]})),
    h("log_logged_model_params", "model param value number", M, [LoggedModelParameter("p", 5)], setup=model(), stricter="SQLite stores the number 5 as the param's TEXT value; a param value is a string", rest=post(Fmt("logged-models/{model}/params"), params=[{"key": "p", "value": 5}])),
    h("create_logged_model", "model param value None", E, "m", None, None, [LoggedModelParameter("p", None)], setup=exp(), rest=post("logged-models", experiment_id=E, name="m", params=[{"key": "p"}])),
    h("log_inputs", "dataset name too long", R, [DatasetInput(Dataset("d" * 501, "x", "local", "{}"), [])], setup=run(), rest=post("runs/log-inputs", run_id=R, datasets=[{"dataset": {"name": "d" * 501, "digest": "x", "source_type": "local", "source": "{}"}}])),
    h("log_inputs", "dataset source dict", R, [DatasetInput(Dataset("d", "x", "local", {"uri": "/etc"}), [])], setup=run()),
    h("log_outputs", "output of unknown model", R, [LoggedModelOutput(MISSING_MODEL, 0)], setup=run(), rest=post("runs/outputs", run_id=R, models=[{"model_id": MISSING_MODEL, "step": 0}])),
    h("start_trace", "trace in unknown experiment", Build(lambda x: TraceInfo(trace_id="tr-" + "2" * 32, trace_location=TraceLocation.from_experiment_id("987654"), request_time=1, execution_duration=1, state=TraceState.OK))),
    h("start_trace", "trace request_time negative", Build(lambda x: TraceInfo(trace_id="tr-" + "3" * 32, trace_location=TraceLocation.from_experiment_id(x.refs["exp"]), request_time=-1, execution_duration=1, state=TraceState.OK)), setup=exp()),
]
# fmt: on
