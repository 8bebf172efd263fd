"""Tracing on the lake: each scenario runs through the real MLflow client against sqlite:/// and lakehouse:///
(`_differential`), and the outcomes (results, or error codes) must be equal; then the spans table read by Spark."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Callable
from typing import Any

import mlflow
import pytest
from _differential import Recorder, differential
from _mlflow_server import mlflow_server
from mlflow.entities import Assessment, AssessmentSource, SpanStatusCode, Trace, TraceInfo, TraceLocation, TraceState
from mlflow.entities.assessment import Expectation, Feedback, FeedbackValue
from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
from mlflow.exceptions import MlflowException
from mlflow.store.entities.paged_list import PagedList

pytestmark = pytest.mark.filterwarnings("ignore")

T0 = 1_700_000_000_000  # ms: traces get fixed, distinct times, so orders are the same on both backends
_VOLATILE_METADATA = ("mlflow.source", "mlflow.user", "mlflow.trace.size")  # incl. sourceRun: run ids differ
_VOLATILE_TAGS = {"mlflow.artifactLocation"}
_SQL_DETAIL = re.compile(r"\s*\(sqlite3\.\w+\)[\s\S]*$")
"""The SQL store appends its database's error (statement, parameters, a link) to some messages: not the contract."""
_CODE_ONLY = {"tag on missing trace"}
"""Errors whose SQL store message is its database's error alone (a foreign key violation): codes compared only."""
_TRACE_ID = re.compile(r"tr-[0-9a-f]{32}")
_ASSESSMENT_ID = re.compile(r"a-[0-9a-f]{32}")


class TraceRecorder(Recorder):
    """`Recorder` for traces: a trace is known by its name (`mlflow.traceName`), never by its random id."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.names: dict[str, str] = {}

    def name(self, trace_id: str | None) -> str | None:
        return None if trace_id is None else self.names.get(trace_id, "?")

    def __call__(self, label: str, fn: Callable[[], Any]) -> Any:
        """As `Recorder`, an error recorded with its message too (ids named, the SQL store's database detail cut)."""
        try:
            value = fn()
        except MlflowException as e:
            message = None if label in _CODE_ONLY else self.norm_message(e.message)
            self.items.append((label, ("error", e.error_code, message)))
            return None
        self.items.append((label, ("ok", self.norm(value))))
        return value

    def norm_message(self, message: str) -> str:
        message = _SQL_DETAIL.sub("", message)
        message = _TRACE_ID.sub(lambda m: self.names.get(m.group(0), "<trace>"), message)
        return _ASSESSMENT_ID.sub("<assessment>", message)

    def norm(self, x: Any) -> Any:
        if isinstance(x, Trace):
            by_id = {s.span_id: s.name for s in x.data.spans}
            spans = [
                {
                    "name": s.name,
                    "type": s.span_type,
                    "parent": by_id.get(s.parent_id),
                    "status": str(s.status.status_code),
                    "times": (s.start_time_ns, s.end_time_ns),
                    "inputs": s.inputs,
                    "outputs": s.outputs,
                    "attributes": {k: v for k, v in s.attributes.items() if k != "mlflow.traceRequestId"},
                    "events": [(e.name, e.timestamp, e.attributes) for e in s.events],
                }
                for s in x.data.spans
            ]
            return {"info": self.norm(x.info), "spans": spans}
        if isinstance(x, TraceInfo):
            return {
                "name": self.name(x.trace_id),
                "experiment": x.experiment_id,
                "time": x.request_time,
                "duration": x.execution_duration,
                "state": str(x.state),
                "tags": {k: v for k, v in x.tags.items() if k not in _VOLATILE_TAGS},
                "metadata": {k: v for k, v in x.trace_metadata.items() if not k.startswith(_VOLATILE_METADATA)},
                "previews": (x.request_preview, x.response_preview),
                "client_request_id": x.client_request_id,
                "assessments": [self.norm(a) for a in x.assessments],
            }
        if isinstance(x, Assessment):
            return {
                "trace": self.name(x.trace_id),
                "name": x.name,
                "kind": type(x).__name__,
                "value": x.value,
                "error": x.error.error_code if isinstance(x, Feedback) and x.error else None,
                "rationale": x.rationale,
                "metadata": x.metadata,
                "source": (x.source.source_type, x.source.source_id),
                "valid": x.valid,
                "overrides": x.overrides is not None,
                "updated": x.last_update_time_ms >= x.create_time_ms,
            }
        if isinstance(x, PagedList):
            return {"items": [self.norm(i) for i in x], "more": x.token is not None}
        return super().norm(x)


@pytest.fixture(autouse=True)
def synchronous_trace_export(monkeypatch):
    """Spans and traces reach the store before the traced call returns (MLflow exports them from a background queue
    by default, and its flush polls for about a second per trace)."""
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.tracing.reset()
    yield
    mlflow.tracing.reset()


def log_trace(rec: TraceRecorder, name: str, i: int, *, error: bool = False, children: int = 2) -> str:
    """A trace `name` started at T0 + 10 s * i: a root span with `children` child spans (one with an event and a
    dict attribute), ending in ERROR when `error`. Returns its id, known to `rec` by its name."""
    start = (T0 + 10_000 * i) * 1_000_000
    root = mlflow.start_span_no_context(
        name, span_type="CHAIN", inputs={"q": f"question {i}"}, attributes={"i": i}, start_time_ns=start
    )
    for c in range(children):
        child = mlflow.start_span_no_context(
            f"{name}-child-{c}",
            span_type="LLM" if c == 0 else "TOOL",
            parent_span=root,
            inputs={"c": c},
            attributes={"model": "m-1", "params": {"t": 0.5, "k": [1, 2]}},
            start_time_ns=start + (c + 1) * 1_000_000,
        )
        if c == 0:
            child.add_event(mlflow.entities.SpanEvent("token", timestamp=start + 1_500_000, attributes={"n": 3}))
        child.end(outputs={"text": f"answer {c}"}, end_time_ns=start + (c + 2) * 1_000_000)
    status = SpanStatusCode.ERROR if error else SpanStatusCode.OK
    root.end(outputs=f"done {i}", status=status, end_time_ns=start + (children + 3) * 1_000_000)
    rec.names[root.trace_id] = name
    return root.trace_id


def _expect_error(fn, code: str) -> None:
    with pytest.raises(MlflowException) as info:
        fn()
    assert info.value.error_code == code


def test_traces_are_logged_and_read_back_as_on_sqlite(backends):
    def scenario(c, rec):
        exp = c.create_experiment("traces")
        mlflow.set_experiment(experiment_id=exp)
        a = log_trace(rec, "alpha", 1)
        b = log_trace(rec, "beta", 2, error=True, children=3)
        rec("get", lambda: c.get_trace(a))
        rec("get error trace", lambda: c.get_trace(b))
        rec("info", lambda: c._tracing_client.get_trace_info(b))
        rec("batch", lambda: sorted(t.info.request_time for t in c._tracing_client.store.batch_get_traces([a, b])))
        rec("missing", lambda: c.get_trace("tr-0000"))
        rec("missing info", lambda: c._tracing_client.get_trace_info("tr-0000"))
        rec("set tag", lambda: c.set_trace_tag(a, "team", "ml"))
        rec("rename", lambda: c.set_trace_tag(b, "mlflow.traceName", "beta-2"))
        rec("tag on missing trace", lambda: c.set_trace_tag("tr-0000", "k", "v"))
        rec("bad tag key", lambda: c.set_trace_tag(a, "", "v"))
        rec("tagged", lambda: c._tracing_client.get_trace_info(a))
        rec("delete tag", lambda: c.delete_trace_tag(a, "team"))
        rec("delete missing tag", lambda: c.delete_trace_tag(a, "team"))
        rec("delete name", lambda: c.delete_trace_tag(b, "mlflow.traceName"))
        rec("delete missing name", lambda: c.delete_trace_tag(b, "mlflow.traceName"))
        rec("untagged", lambda: c._tracing_client.get_trace_info(b))
        with mlflow.start_run(run_name="r") as run:
            inside = log_trace(rec, "in-run", 3)
        rec(
            "source run",
            lambda: c._tracing_client.get_trace_info(inside).trace_metadata.get("mlflow.sourceRun") == run.info.run_id,
        )
        rec("link", lambda: c.link_traces_to_run([a], run.info.run_id))
        rec("link too many", lambda: c.link_traces_to_run([a] * 101, run.info.run_id))
        rec("run's traces", lambda: c.search_traces([exp], filter_string=f"run_id = '{run.info.run_id}'"))

    differential(backends, scenario, recorder=TraceRecorder)


def test_store_trace_writes_and_bad_input_as_on_sqlite(backends):
    """The calls the exporter makes (start_trace, log_spans), made directly: merges, re-sends, and refusals."""

    def info(exp: str, trace_id: str, name: str, **fields: Any) -> TraceInfo:
        return TraceInfo(
            trace_id=trace_id,
            trace_location=TraceLocation.from_experiment_id(exp),
            request_time=fields.pop("request_time", T0),
            execution_duration=fields.pop("execution_duration", 7),
            state=fields.pop("state", TraceState.OK),
            trace_metadata={"mlflow.traceInputs": "{}", **fields.pop("metadata", {})},
            tags={"mlflow.traceName": name, **fields.pop("tags", {})},
            **fields,
        )

    def scenario(c, rec):
        store = c._tracing_client.store
        exp = c.create_experiment("writes")
        gone = c.create_experiment("gone")
        c.delete_experiment(gone)
        mlflow.set_experiment(experiment_id=exp)
        a = log_trace(rec, "a", 1)
        spans = c.get_trace(a).data.spans
        rec("re-send spans", lambda: len(store.log_spans(exp, spans)))
        rec("re-send spans async", lambda: len(asyncio.run(store.log_spans_async(exp, spans))))
        rec("no spans", lambda: store.log_spans(exp, []))
        rec("unchanged", lambda: c.get_trace(a))
        fresh = "tr-" + "0" * 31 + "1"
        rec.names[fresh] = "fresh"
        rec(
            "start_trace without spans",
            lambda: store.start_trace(info(exp, fresh, "fresh", metadata={"k": "v"}, tags={"t": "1"})),
        )
        rec("merged again", lambda: store.start_trace(info(exp, fresh, "fresh", state=TraceState.ERROR)))
        rec("partial", lambda: c._tracing_client.store.get_trace(fresh, allow_partial=True))
        rec("not exported", lambda: store.batch_get_traces([fresh]))
        rec("infos", lambda: store.batch_get_trace_infos([fresh, a, "tr-missing"]))
        rec("missing experiment", lambda: store.start_trace(info("999", "tr-" + "0" * 31 + "2", "x")))
        rec("deleted experiment", lambda: store.start_trace(info(gone, "tr-" + "0" * 31 + "3", "x")))
        rec("name too long", lambda: store.start_trace(info(exp, "tr-" + "0" * 31 + "4", "n" * 10_000)))
        rec("bad experiment id", lambda: store.start_trace(info("abc", "tr-" + "0" * 31 + "5", "x")))
        rec(
            "assessment on missing trace",
            lambda: store.create_assessment(Feedback(name="q", value=1, trace_id="tr-" + "0" * 32)),
        )

    differential(backends, scenario, recorder=TraceRecorder)


def test_token_usage_cost_and_session_from_spans_as_on_sqlite(backends):
    """Usage and cost summed over the span tree, the session and user from span attributes, as the SQL store
    derives them in log_spans; then read back as metadata, filtered and charted."""

    def llm_trace(rec: TraceRecorder, name: str, i: int, session: str) -> str:
        start = (T0 + 10_000 * i) * 1_000_000
        root = mlflow.start_span_no_context(
            name, span_type="AGENT", attributes={"session.id": session, "user.id": "u-1"}, start_time_ns=start
        )
        for c in range(2):
            child = mlflow.start_span_no_context(
                f"{name}-llm-{c}",
                span_type="CHAT_MODEL",
                parent_span=root,
                attributes={
                    "mlflow.chat.tokenUsage": {"input_tokens": 3 + c, "output_tokens": 4, "total_tokens": 7 + c},
                    "mlflow.llm.cost": {"input_cost": 0.5, "output_cost": 0.25, "total_cost": 0.75},
                    "mlflow.llm.model": "gpt-x",
                },
                start_time_ns=start + (c + 1) * 1_000_000,
            )
            child.end(end_time_ns=start + (c + 2) * 1_000_000)
        root.end(end_time_ns=start + 5_000_000)
        rec.names[root.trace_id] = name
        return root.trace_id

    def scenario(c, rec):
        exp = c.create_experiment("usage")
        mlflow.set_experiment(experiment_id=exp)
        first = llm_trace(rec, "u-0", 0, "s-1")
        llm_trace(rec, "u-1", 1, "s-2")
        store = c._tracing_client.store
        rec("info", lambda: store.get_trace_info(first))
        for f in (
            "metadata.`mlflow.trace.session` = 's-1'",
            "metadata.`mlflow.trace.tokenUsage` IS NOT NULL",
            'metadata.`mlflow.trace.tokenUsage` = \'{"input_tokens": 7, "output_tokens": 8, "total_tokens": 15}\'',
            "metadata.`mlflow.trace.cost` LIKE '%1.5%'",
            "metadata.`mlflow.trace.user` = 'u-1'",
        ):
            rec(f"filter {f}", lambda f=f: c.search_traces([exp], filter_string=f, include_spans=False))
        rec("order by session", lambda: c.search_traces([exp], order_by=["metadata.`mlflow.trace.session` DESC"]))
        for view, metric, dims in (
            ("TRACES", "input_tokens", None),
            ("TRACES", "session_count", None),
            ("SPANS", "total_cost", ["span_model_name"]),
        ):
            agg = AggregationType.COUNT if metric == "session_count" else AggregationType.SUM
            rec(
                f"{metric} {dims}",
                lambda v=view, m=metric, d=dims, a=agg: [
                    (p.dimensions, p.values)
                    for p in store.query_trace_metrics([exp], MetricViewType(v), m, [MetricAggregation(a)], d)
                ],
            )

    got = dict(differential(backends, scenario, recorder=TraceRecorder))
    metadata = got["info"][1]["metadata"]  # by hand: 3 + 4 input, 4 + 4 output, 7 + 8 total; 2 x 0.75 cost
    assert metadata["mlflow.trace.tokenUsage"] == '{"input_tokens": 7, "output_tokens": 8, "total_tokens": 15}'
    assert metadata["mlflow.trace.cost"] == '{"input_cost": 1.0, "output_cost": 0.5, "total_cost": 1.5}'
    assert (metadata["mlflow.trace.session"], metadata["mlflow.trace.user"]) == ("s-1", "u-1")


def test_search_traces_filters_orders_and_pages_as_on_sqlite(backends):
    filters = [
        None,
        "status = 'OK'",
        "trace.status != 'OK'",
        "attributes.status IN ('OK', 'ERROR')",
        "timestamp_ms > 1700000030000",
        "timestamp >= 1700000030000 AND timestamp < 1700000060000",
        "execution_time_ms > 4",
        "end_time_ms <= 1700000040006",
        "name = 't-3'",
        "name LIKE 't-%'",
        "name ILIKE 'T-1%'",
        "name RLIKE '^t-[24]$'",
        "tags.kind = 'even'",
        "tags.kind != 'even'",
        "tags.kind IS NULL",
        "tags.kind IS NOT NULL",
        "tags.`kind` LIKE 'ev%'",
        "metadata.mlflow.traceInputs LIKE '%question 2%'",
        "metadata.color IS NULL",
        "span.name = 't-2-child-1'",
        "span.type = 'TOOL'",
        "span.status = 'ERROR'",
        "span.name LIKE 't-1%' AND tags.kind = 'even'",
        "span.attributes.model LIKE '%m-1%'",
        "trace.text LIKE '%answer 2%'",
        "request_id = 'tr-none'",
    ]
    bad = [
        "status = ",
        "tags.kind > 'a'",
        "span.foo = 'x'",
        "span.content = 'x'",
        "metadata.k >= 'a'",
        "nope.x = 'y'",
        "timestamp_ms = 'abc'",
        "status = 'OK' OR status = 'ERROR'",
        "prompt = 'noslash'",
    ]
    orders = [
        ["timestamp_ms ASC"],
        ["execution_time_ms DESC"],
        ["name ASC"],
        ["status ASC", "timestamp DESC"],
        ["tags.kind ASC"],
    ]
    bad_orders = [
        ["name ASC", "name DESC"],
        ["nope ASC"],
        ["timestamp_ms SIDEWAYS"],
        ["metadata.mlflow.trace.tokenUsage"],
    ]

    def scenario(c, rec):
        exp = c.create_experiment("search")
        other = c.create_experiment("other")
        mlflow.set_experiment(experiment_id=exp)
        for i in range(6):
            log_trace(rec, f"t-{i}", i, error=i == 4, children=1 + i % 3)
            if i % 2 == 0:
                trace_id = next(k for k, v in rec.names.items() if v == f"t-{i}")
                c.set_trace_tag(trace_id, "kind", "even")
        mlflow.set_experiment(experiment_id=other)
        log_trace(rec, "elsewhere", 7)
        for f in filters:
            rec(f"filter {f}", lambda f=f: c.search_traces([exp], filter_string=f, include_spans=False))
        for f in bad:
            rec(f"bad filter {f}", lambda f=f: c.search_traces([exp], filter_string=f))
        for o in orders:
            rec(f"order {o}", lambda o=o: c.search_traces([exp], order_by=o, include_spans=False))
        for o in bad_orders:
            rec(f"bad order {o}", lambda o=o: c.search_traces([exp], order_by=o))
        rec("both experiments", lambda: c.search_traces([exp, other], include_spans=False))
        rec("max_results 0", lambda: c.search_traces([exp], max_results=0))
        store = c._tracing_client.store
        pages, token = [], None
        while True:
            page, token = store.search_traces([exp], max_results=4, order_by=["name DESC"], page_token=token)
            pages.append([rec.name(t.trace_id) for t in page])
            if not token:
                break
        rec("paged", lambda: pages)
        rec("bad token", lambda: store.search_traces([exp], page_token="garbage"))

    differential(backends, scenario, recorder=TraceRecorder)


def test_search_traces_over_many_traces_with_ties_pages_as_on_sqlite(backends, monkeypatch):
    """The lake finds a page among candidates (the rows first by the first order key, grown while too few match
    the per-trace filters): with a first guess of 8 rows, growing twofold, every page below takes several rounds,
    cuts through ties of equal timestamps, and reads a table with files added, deleted and compacted since its
    frame was written; another experiment's traces, newer and older than all, leave the first rows by time without
    a match, so the candidates are then taken among the experiment's rows. The pages must be sqlite's."""
    monkeypatch.setattr("tracking._trace_search.FIRST_CANDIDATES", 8)
    monkeypatch.setattr("tracking._trace_search.CANDIDATES_PER_TRACE", 1)
    monkeypatch.setattr("tracking._trace_search.CANDIDATE_GROWTH", 2)
    filters = [
        None,
        "tags.shard = '3'",
        "tags.shard = '3' AND status = 'OK'",
        "tags.shard != '3' AND metadata.user = 'u2'",
        "tags.shard IS NULL",
        "metadata.user LIKE 'u1%' AND tags.shard IN ('1', '2')",
        "tags.shard = 'nowhere'",
    ]
    orders = [[], ["timestamp_ms ASC"], ["execution_time_ms DESC"], ["tags.shard ASC"]]

    def pages(store, exp, f, order):
        out, token = [], None
        while True:
            page, token = store.search_traces(
                locations=[exp], filter_string=f, order_by=order, max_results=7, page_token=token
            )
            out.append([rec_names.get(t.trace_id, "?") for t in page])
            if not token:
                return out

    rec_names: dict[str, str] = {}

    def scenario(c, rec):
        store = c._tracking_client.store
        exp = c.create_experiment("many")
        ids = []
        for i in range(90):
            info = TraceInfo(
                trace_id=f"tr-{i * 7919 + 1:032x}",
                trace_location=TraceLocation.from_experiment_id(exp),
                request_time=T0 + 1000 * (i // 6),  # six traces a second: ties at every cut
                state=TraceState.OK if i % 5 else TraceState.ERROR,
                execution_duration=i % 13,
                tags={"shard": str(i % 7)} if i % 11 else {},
                trace_metadata={"user": f"u{i % 4}"},
            )
            ids.append(store.start_trace(info).trace_id)
            rec_names[ids[-1]] = f"t{i}"
        other = c.create_experiment("other")  # older and newer traces of another experiment, around them all
        for i in range(60):
            info = TraceInfo(
                trace_id=f"tr-{i * 104729 + 3:032x}",
                trace_location=TraceLocation.from_experiment_id(other),
                request_time=T0 + 1000 * (i - 60 if i < 30 else 100 + i),
                state=TraceState.OK,
                execution_duration=1,
                tags={"shard": "3"},
                trace_metadata={"user": "u2"},
            )
            store.start_trace(info)
        for f in filters:
            for order in orders:
                rec(f"{f} {order}", lambda f=f, order=order: pages(store, exp, f, order))
        c.delete_traces(exp, trace_ids=ids[40:55])
        for i in range(90, 110):
            info = TraceInfo(
                trace_id=f"tr-{i * 7919 + 1:032x}",
                trace_location=TraceLocation.from_experiment_id(exp),
                request_time=T0 + 1000 * (i // 6),
                state=TraceState.OK,
                execution_duration=i % 13,
                tags={"shard": "3"},
                trace_metadata={"user": "u2"},
            )
            rec_names[store.start_trace(info).trace_id] = f"t{i}"
        for f in filters[:4]:
            rec(f"after deletes and writes: {f}", lambda f=f: pages(store, exp, f, []))

    differential(backends, scenario, recorder=TraceRecorder)


def test_delete_traces_as_on_sqlite(backends):
    def scenario(c, rec):
        exp = c.create_experiment("deletes")
        mlflow.set_experiment(experiment_id=exp)
        ids = [log_trace(rec, f"d-{i}", i, children=1) for i in range(6)]
        rec("neither", lambda: c.delete_traces(exp))
        rec("both", lambda: c.delete_traces(exp, max_timestamp_millis=T0, trace_ids=ids[:1]))
        rec("ids and max", lambda: c.delete_traces(exp, trace_ids=ids[:1], max_traces=1))
        rec("max 0", lambda: c.delete_traces(exp, max_timestamp_millis=T0, max_traces=0))
        rec("by time, oldest 1", lambda: c.delete_traces(exp, max_timestamp_millis=T0 + 30_000, max_traces=1))
        rec("by time", lambda: c.delete_traces(exp, max_timestamp_millis=T0 + 30_000))
        rec("by ids", lambda: c.delete_traces(exp, trace_ids=[ids[4], "tr-missing"]))
        rec("left", lambda: c.search_traces([exp]))
        rec("deleted is gone", lambda: c.get_trace(ids[0]))

    differential(backends, scenario, recorder=TraceRecorder)


def test_assessments_as_on_sqlite(backends):
    def scenario(c, rec):
        exp = c.create_experiment("assess")
        mlflow.set_experiment(experiment_id=exp)
        t = log_trace(rec, "judged", 1)
        human = AssessmentSource(source_type="HUMAN", source_id="ann")
        fb = rec(
            "feedback",
            lambda: mlflow.log_feedback(
                trace_id=t, name="quality", value=0.8, source=human, rationale="ok", metadata={"a": "1"}
            ),
        )
        ex = rec("expectation", lambda: mlflow.log_expectation(trace_id=t, name="answer", value={"x": [1, 2]}))
        rec("feedback error", lambda: mlflow.log_feedback(trace_id=t, name="judge", error=MlflowException("boom")))
        rec("get", lambda: c._tracing_client.get_assessment(t, fb.assessment_id))
        rec("get missing", lambda: c._tracing_client.get_assessment(t, "a-missing"))
        rec("get on missing trace", lambda: c._tracing_client.get_assessment("tr-0000", "a-missing"))
        rec("on missing trace", lambda: mlflow.log_feedback(trace_id="tr-0000", name="q", value=1))
        rec(
            "update",
            lambda: c._tracing_client.store.update_assessment(
                t, fb.assessment_id, name="quality2", feedback=FeedbackValue(0.9), metadata={"b": "2"}
            ),
        )
        rec(
            "update expectation with feedback",
            lambda: c._tracing_client.store.update_assessment(t, ex.assessment_id, feedback=FeedbackValue(1)),
        )
        over = rec("override", lambda: mlflow.override_feedback(trace_id=t, assessment_id=fb.assessment_id, value=0.1))
        rec("on the trace", lambda: c.get_trace(t).info.assessments)
        rec("filter feedback", lambda: c.search_traces([exp], filter_string="feedback.quality2 > 0.5"))
        rec("filter override", lambda: c.search_traces([exp], filter_string="feedback.quality2 < 0.5"))
        rec("filter expectation", lambda: c.search_traces([exp], filter_string="expectation.answer IS NOT NULL"))
        rec("delete override", lambda: c._tracing_client.delete_assessment(t, over.assessment_id))
        rec("delete again", lambda: c._tracing_client.delete_assessment(t, over.assessment_id))
        rec("restored", lambda: c._tracing_client.get_assessment(t, fb.assessment_id))
        rec("via entity", lambda: mlflow.log_assessment(t, Expectation(name="e2", value="yes")))
        rec("all", lambda: c.get_trace(t).info.assessments)

    differential(backends, scenario, recorder=TraceRecorder)


def test_query_trace_metrics_as_on_sqlite(backends):
    day = 86_400
    queries = [
        ("TRACES", "trace_count", [("COUNT", None)], None, None, None),
        ("TRACES", "trace_count", [("COUNT", None)], ["trace_status"], None, day),
        ("TRACES", "trace_count", [("COUNT", None)], ["trace_name"], ["trace.status = 'OK'"], None),
        ("TRACES", "latency", [("AVG", None), ("MAX", None), ("PERCENTILE", 50.0)], None, None, 3600),
        ("SPANS", "span_count", [("COUNT", None)], ["span_type"], None, None),
        ("SPANS", "latency", [("AVG", None)], ["span_name"], None, None),
        ("ASSESSMENTS", "assessment_count", [("COUNT", None)], ["assessment_name"], None, None),
        ("ASSESSMENTS", "assessment_value", [("AVG", None)], ["assessment_name"], None, None),
        ("TRACES", "nope", [("COUNT", None)], None, None, None),
        ("TRACES", "trace_count", [("AVG", None)], None, None, None),
        ("TRACES", "trace_count", [("COUNT", None)], ["span_type"], None, None),
        ("TRACES", "trace_count", [("COUNT", None)], None, ["status ="], None),
    ]

    def scenario(c, rec):
        exp = c.create_experiment("metrics")
        mlflow.set_experiment(experiment_id=exp)
        for i in range(5):
            log_trace(rec, f"m-{i % 2}", i, error=i == 3, children=1 + i % 2)
        t = next(iter(rec.names))
        mlflow.log_feedback(trace_id=t, name="quality", value=0.5)
        mlflow.log_feedback(trace_id=t, name="quality", value=1.0)
        store = c._tracing_client.store
        for view, metric, aggs, dims, filters, interval in queries:
            aggregations = [MetricAggregation(AggregationType(a), p) for a, p in aggs]
            rec(
                f"{view} {metric} {aggs} {dims} {filters} {interval}",
                lambda v=view, m=metric, a=aggregations, d=dims, f=filters, i=interval: [
                    (p.metric_name, p.dimensions, p.values)
                    for p in store.query_trace_metrics(
                        [exp],
                        MetricViewType(v),
                        m,
                        a,
                        dimensions=d,
                        filters=f,
                        time_interval_seconds=i,
                        start_time_ms=T0 - 86_400_000 if i else None,
                        end_time_ms=T0 + 86_400_000 if i else None,
                    )
                ],
            )
        rec(
            "interval without range",
            lambda: store.query_trace_metrics(
                [exp],
                MetricViewType.TRACES,
                "trace_count",
                [MetricAggregation(AggregationType.COUNT)],
                time_interval_seconds=60,
            ),
        )

    differential(backends, scenario, recorder=TraceRecorder)


def test_spans_table_reads_as_plain_columns_in_spark(spark, lake_uri, tmp_path):
    mlflow.set_tracking_uri(lake_uri)
    mlflow.set_experiment("spark")
    rec = TraceRecorder(None)
    trace_id = log_trace(rec, "sparked", 1, children=2)
    spans = spark.read.format("delta").load(f"{tmp_path}/lake/mlflow/spans")
    spans.createOrReplaceTempView("spans")
    rows = spark.sql(
        "SELECT name, span_type, status, parent_span_id IS NULL AS root, end_time_unix_nano - start_time_unix_nano "
        "AS nanos, get_json_object(attributes, '$.model') AS model, get_json_object(events, '$[0].name') AS event "
        f"FROM spans WHERE trace_id = '{trace_id}' ORDER BY start_time_unix_nano"
    ).collect()
    assert [tuple(r) for r in rows] == [
        ("sparked", "CHAIN", "OK", True, 5_000_000, None, None),
        ("sparked-child-0", "LLM", "OK", False, 1_000_000, "m-1", "token"),
        ("sparked-child-1", "TOOL", "OK", False, 1_000_000, "m-1", None),
    ]
    traces = spark.read.format("delta").load(f"{tmp_path}/lake/mlflow/traces")
    assert traces.filter(f"trace_id = '{trace_id}'").select("trace_name", "status").collect()[0] == ("sparked", "OK")


def test_traces_through_mlflow_server(lake_uri, tmp_path):
    """What the UI calls: traces exported over REST (OTLP spans, start_trace), the Traces tab's search and get, and
    the Overview tab's metrics endpoint, all served by `mlflow server` on the lake."""
    with mlflow_server(lake_uri, (tmp_path / "artifacts").as_uri()) as server:
        mlflow.set_tracking_uri(server.base)
        exp = mlflow.set_experiment("served").experiment_id

        @mlflow.trace
        def double(x: int) -> int:
            with mlflow.start_span("inner") as span:
                span.set_inputs({"x": x})
            return 2 * x

        double(1)
        double(2)
        traces = mlflow.search_traces(locations=[exp], return_type="list", order_by=["timestamp_ms ASC"])
        assert [[s.name for s in t.data.spans] for t in traces] == [["double", "inner"]] * 2
        assert [t.info.response_preview for t in traces] == ["2", "4"]
        got = mlflow.get_trace(traces[1].info.trace_id)
        assert (got.info.state.value, got.data.spans[1].inputs) == ("OK", {"x": 2})
        body = {"experiment_ids": [exp], "view_type": "TRACES", "metric_name": "trace_count"}
        body["aggregations"] = [{"aggregation_type": "COUNT"}]
        request = urllib.request.Request(
            f"{server.base}/ajax-api/3.0/mlflow/traces/metrics",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            assert json.load(response)["data_points"][0]["values"] == {"COUNT": 2.0}
