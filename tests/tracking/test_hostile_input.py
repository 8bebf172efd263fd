"""Hostile input to the tracking store, through the store and through `mlflow server` (issue 16).

`_hostile_cases.HOSTILE` is one catalogue of classes of bad input (paths out of the lake root, SQL injections and
garbage in filters and order_by, wrong types, control characters, NaN/inf, MLflow's limits, out-of-range times,
duplicate keys, unknown/malformed/deleted ids, forged page tokens, unknown statuses).

- `test_store_answers_as_sqlite`: each case's call on MLflow's SQL store (sqlite:///, the reference) and on ours
  (lakehouse:///), compared as `test_store_contract` compares (result, or error code and message). Where MLflow
  does not define the answer (its store raises a bare Python error, answers INTERNAL_ERROR, or passes its
  database's refusal through) or accepts what its SQLite column merely tolerates (`Hostile.stricter`, e.g. NaN
  as a start time), ours must refuse with an MLflow error code the server answers with a 4xx, in words. Every
  refusal leaves every `_delta_log` of the lake as it was (no file added or removed).
- `test_server_answers_as_sqlite`: the cases with a REST route, sent as HTTP requests to one `mlflow server` on
  sqlite:/// and one on the lake (started together, once per module; the default run sends one case per store
  method and every case where ours answers otherwise than sqlite, `--long` all of them): never a 500 (INVALID_STATE aside, which
  MLflow itself maps to 500 and both answer alike), every refusal a 4xx with an MLflow error body, the same
  status as the sqlite server's, and again no Delta commit for a refusal.
- `test_server_keeps_artifact_paths_in_the_run_root`: artifact paths out of a run's root (`..`, absolute,
  URL-encoded, `file://`, a symlink planted in the root pointing at /etc) are refused by both servers alike.
- `test_lost_commit_race_is_503`: a store commit that keeps losing its race reaches the client as
  TEMPORARILY_UNAVAILABLE (HTTP 503, which MLflow's REST client retries), not a 500, and writes nothing. The
  race is forced in the lake's server by a test-only `sitecustomize` (`LOSE_RACES`, on when the environment
  names its control file) that makes commits to the tables the file lists lose, retried for 0.3 s, not 30 s.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
import requests
import test_store_contract as contract
from _hostile_cases import HOSTILE, Hostile, Rest
from _store_contract_cases import Ctx, Fmt, Name, Ref, resolve, set_up
from http_process import free_port, running, script
from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as SqlTrackingStore

from tracking import LakehouseTrackingStore

pytestmark = pytest.mark.filterwarnings("ignore")

MIN_CASES = 100


def delta_logs(lake: Path) -> dict[str, frozenset[str]]:
    """Every table of the lake (by path) with the files of its `_delta_log` (commits, checkpoints)."""
    return {
        str(log.parent.relative_to(lake)): frozenset(p.name for p in log.iterdir() if p.is_file())
        for log in lake.rglob("_delta_log")
    }


def changed_logs(before: dict[str, frozenset[str]], after: dict[str, frozenset[str]]) -> dict[str, list[str]]:
    """The tables whose `_delta_log` gained or lost files, with the names added (or a table created)."""
    return {
        table: sorted(files - before.get(table, frozenset())) or ["<files removed>"]
        for table, files in after.items()
        if files != before.get(table)
    }


def test_catalogue_is_large_and_distinct() -> None:
    """At least 100 cases, each a class of its own (ids unique), and most with a REST route."""
    ids = [hostile.id for hostile in HOSTILE]
    assert len(ids) >= MIN_CASES, len(ids)
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    assert sum(hostile.rest is not None for hostile in HOSTILE) >= MIN_CASES * 3 // 4


# ---------------------------------------------------------------------------------------------------- the store


def store_outcome(side: contract.Side, hostile: Hostile, lake: Path | None) -> dict[str, Any]:
    """`test_store_contract.outcome`, with the lake's `_delta_log`s snapshot between setup and call."""
    case = hostile.case
    mlflow.set_tracking_uri(side.uri)
    ctx = Ctx(side.tracking, side.registry, case.prefix)
    set_up(case.setup, ctx)
    args, kwargs = resolve(case.args, ctx), resolve(case.kwargs, ctx)
    n = contract.Normaliser(ctx, side, case.exact)

    def attempt(fn):
        try:
            value = fn()
        except MlflowException as e:
            return ("error", e.error_code, n.text(contract._SQL_DETAIL.sub("", e.message)))
        except Exception as e:  # noqa: BLE001 - any other exception is an outcome to compare, not a crash
            return ("raised", type(e).__name__, n.text(str(e)))
        return ("ok", n.norm(value))

    before = delta_logs(lake) if lake else {}
    result: dict[str, Any] = {"call": attempt(lambda: getattr(ctx.t, case.method)(*args, **kwargs))}
    if lake and result["call"][0] != "ok":
        result["written"] = changed_logs(before, delta_logs(lake))
    if case.after is not None:
        result["after"] = attempt(lambda: case.after(ctx))
    return result


@pytest.fixture(scope="module")
def store_sides(tmp_path_factory) -> tuple[list[contract.Side], Path]:
    root = tmp_path_factory.mktemp("hostile-store")
    return contract.make_sides(root), root / "lake"


def _store_param(hostile: Hostile):
    marks = [pytest.mark.xfail(strict=True, reason=hostile.case.xfail)] if hostile.case.xfail else []
    return pytest.param(hostile, id=hostile.id, marks=marks)


CLIENT_ERRORS = {code for code, status in ERROR_CODE_TO_HTTP_STATUS.items() if 400 <= status < 500}
"""The MLflow error codes the server answers with a 4xx."""


def mlflow_defines(reference: tuple) -> bool:
    """Whether MLflow's SQL store gives a defined answer: a result, or a typed error of its own. Not when it
    raises a bare Python error, answers INTERNAL_ERROR (a 500 on the server) or passes its database's refusal
    through (the message is all database text, which the contract comparison strips)."""
    if reference[0] == "raised":
        return False
    return not (reference[0] == "error" and (reference[1] == "INTERNAL_ERROR" or not reference[2]))


def assert_refused(hostile: Hostile, ours: dict[str, Any], written: dict[str, list[str]]) -> None:
    """Ours refused with a typed MlflowException that the server answers with a 4xx, saying what was wrong."""
    kind, code, message = (*ours["call"], None)[:3]
    assert kind == "error" and code in CLIENT_ERRORS, f"{hostile.id}: not refused with a 4xx MLflow error: {ours}"
    assert len(message) > 20, f"{hostile.id}: a refusal must say what was wrong: {message!r}"
    assert not written, f"{hostile.id}: refused, yet the lake's Delta logs changed: {written}"


@pytest.mark.parametrize("hostile", [_store_param(h) for h in HOSTILE])
def test_store_answers_as_sqlite(hostile: Hostile, store_sides, tmp_path: Path) -> None:
    (sql, lake), lake_root = store_sides
    if hostile.case.fresh:
        (sql, lake), lake_root = contract.make_sides(tmp_path), tmp_path / "lake"
    reference = store_outcome(sql, hostile, None)
    ours = store_outcome(lake, hostile, lake_root)
    written = ours.pop("written", {})
    if hostile.stricter:
        assert reference["call"][0] == "ok", f"{hostile.id}: the SQL store no longer accepts it: {reference}"
        assert_refused(hostile, ours, written)
    elif hostile.parity:
        assert ours == reference, f"{hostile.id}\n  sqlite:    {reference!r}\n  lakehouse: {ours!r}"
        assert not written, f"{hostile.id}: refused, yet the lake's Delta logs changed: {written}"
    elif hostile.undefined or not mlflow_defines(reference["call"]):
        assert_refused(hostile, ours, written)
    else:
        assert ours == reference, f"{hostile.id}\n  sqlite:    {reference!r}\n  lakehouse: {ours!r}"
        if ours["call"][0] == "error":  # MLflow's code, whatever it is (INVALID_STATE is a 500 in MLflow itself)
            assert not written, f"{hostile.id}: refused, yet the lake's Delta logs changed: {written}"


# ---------------------------------------------------------------------------------------------------- the server

LOSE_RACES = textwrap.dedent(
    '''
    """Test-only, for tests/tracking/test_hostile_input.py: with LAKEHOUSE_TEST_LOSE_RACES=<file> set, a commit of
    the lean Delta log to a table named in that file (one name a line, read at every commit) loses its race, and
    lost races are retried for 0.3 s instead of 30 s."""
    import os

    _control = os.environ.get("LAKEHOUSE_TEST_LOSE_RACES")
    if _control:
        from lakehouse import _log, _retry
        from lakehouse._log_types import CommitConflict

        _publish = _log.LeanTable._publish

        def _lose(self, version, actions):
            with open(_control) as f:
                if self.name in f.read().split():
                    raise CommitConflict(self.name, version)
            return _publish(self, version, actions)

        _log.LeanTable._publish = _lose
        _log.LeanTable.retry_policy = _retry.RetryPolicy(deadline=0.3, first_delay=0.001, max_delay=0.01)
    '''
)


def _json_safe(value: Any) -> bool:
    """Whether a REST body can be sent as JSON at all (bytes cannot; NaN is sent, as Python's json writes it)."""
    try:
        json.dumps(value, default=lambda v: "<placeholder>" if isinstance(v, (Ref, Fmt, Name)) else _raise(v))
    except TypeError:
        return False
    return True


def _raise(value: Any) -> Any:
    raise TypeError(type(value).__name__)


START = 240.0
"""Seconds a server may take to answer /health: two start at once on a shared machine."""
REST_CASES = [h for h in HOSTILE if h.rest is not None and _json_safe(h.rest.body)]
DEFAULT_RUN_REST = {*{h.case.method: h.id for h in reversed(REST_CASES)}.values()} | {
    h.id for h in REST_CASES if h.stricter or h.undefined
}
"""The REST cases of the default run: the first of each store method (every route), and every case where ours
answers other than MLflow's SQL store; `pytest --long` sends the whole catalogue."""
MLFLOW_HANDLER_500 = {
    "log_metric[metric timestamp infinite]": "MLflow's request check (handlers._assert_intlike) lets int(inf) raise "
    "OverflowError: a 500 before any store, on sqlite:/// too",
}
"""REST cases MLflow's own request handling answers with a 500, whatever the store: xfail until MLflow fixes them."""


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def send(base: str, rest: Rest, ctx: Ctx) -> requests.Response:
    path, body = resolve(rest.path, ctx), _drop_none(resolve(rest.body, ctx))
    url = base + (path if path.startswith("/") else f"/api/2.0/mlflow/{path}")
    if rest.verb == "GET":
        return requests.get(url, params=body, timeout=60)
    data = json.dumps(body)  # allow_nan: a NaN goes out as the bare token NaN, as a careless client would send it
    return requests.request(rest.verb, url, data=data, headers={"Content-Type": "application/json"}, timeout=60)


@dataclasses.dataclass
class Served:
    """One `mlflow server` and, on its backend, a store of this process for the cases' setup steps."""

    base: str
    tracking: Any
    lake: Path | None = None
    races: Path | None = None  # the lake server's control file of tables whose commits lose (LOSE_RACES)

    def answer(self, hostile: Hostile) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
        """The HTTP status and JSON body of the case's request (after its setup), and what it wrote if refused."""
        ctx = Ctx(self.tracking, None, "rest." + hostile.case.prefix)
        set_up(hostile.case.setup, ctx)
        assert hostile.rest is not None
        before = delta_logs(self.lake) if self.lake else {}
        resp = send(self.base, hostile.rest, ctx)
        try:
            body = resp.json()
        except ValueError:
            body = {"<not json>": resp.text[:300]}
        written = changed_logs(before, delta_logs(self.lake)) if self.lake and resp.status_code >= 400 else {}
        return resp.status_code, body, written


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, Served]]:
    """`mlflow server` on sqlite:/// (the reference) and on a lake, started at the same time, once for the module.

    The lake's server runs the `LOSE_RACES` hook (its control file empty: no race is lost until a test says so)."""
    root = tmp_path_factory.mktemp("hostile-server")
    sql_uri, lake = f"sqlite:///{root}/mlflow.db", root / "lake"
    artifacts = {"sqlite": (root / "sqlite-artifacts").as_uri(), "lakehouse": (root / "lake-artifacts").as_uri()}
    hooks, races = root / "hooks", root / "lose-races"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(LOSE_RACES)
    races.write_text("")
    ours = LakehouseTrackingStore(f"lakehouse://{lake}", artifacts["lakehouse"])  # the tables, before the server

    def command(uri: str, artifact_root: str, port: int) -> list[str]:
        options = ["--backend-store-uri", uri, "--default-artifact-root", artifact_root, "--host", "127.0.0.1"]
        return [script("mlflow"), "server", *options, "--port", str(port), "--workers", "1"]

    ports = {"sqlite": free_port(), "lakehouse": free_port()}
    contexts = {
        "sqlite": running(
            command(sql_uri, artifacts["sqlite"], ports["sqlite"]), ports["sqlite"], "/health", timeout=START
        ),
        "lakehouse": running(
            command(f"lakehouse://{lake}", artifacts["lakehouse"], ports["lakehouse"]),
            ports["lakehouse"],
            "/health",
            timeout=START,
            env={"PYTHONPATH": str(hooks), "LAKEHOUSE_TEST_LOSE_RACES": str(races)},
        ),
    }
    with contextlib.ExitStack() as stack, concurrent.futures.ThreadPoolExecutor(2) as pool:
        started = {name: pool.submit(cm.__enter__) for name, cm in contexts.items()}
        for cm in contexts.values():  # each stops on exit, started or not (its __exit__ is safe after a failure)
            stack.push(cm.__exit__)
        bases = {name: future.result().base for name, future in started.items()}
        yield {
            "sqlite": Served(bases["sqlite"], SqlTrackingStore(sql_uri, artifacts["sqlite"])),
            "lakehouse": Served(bases["lakehouse"], ours, lake, races),
        }


def _rest_param(hostile: Hostile):
    reason = MLFLOW_HANDLER_500.get(hostile.id)  # a store case's xfail is the store's: the REST request may pass
    return pytest.param(hostile, id=hostile.id, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


@pytest.mark.parametrize("hostile", [_rest_param(h) for h in REST_CASES])
def test_server_answers_as_sqlite(hostile: Hostile, servers: dict[str, Served], request: pytest.FixtureRequest) -> None:
    if (
        hostile.id not in DEFAULT_RUN_REST
        and hostile.id not in MLFLOW_HANDLER_500
        and not request.config.getoption("--long")
    ):
        pytest.skip("the whole REST catalogue runs under --long (the default run sends one case per route)")
    ref_status, ref_body, _ = servers["sqlite"].answer(hostile)
    status, body, written = servers["lakehouse"].answer(hostile)
    assert status < 500 or body.get("error_code") == "INVALID_STATE" == ref_body.get("error_code"), (
        f"{hostile.id}: HTTP {status} from the lake's server: {body}"
    )
    if status >= 400:
        assert isinstance(body.get("error_code"), str) and isinstance(body.get("message"), str), body
        assert not written, f"{hostile.id}: refused with {status}, yet the lake's Delta logs changed: {written}"
    if hostile.stricter:  # over REST, MLflow's request parsing may have refused or converted it already
        assert status == ref_status or 400 <= status < 500, f"{hostile.id}: sqlite {ref_status}, lakehouse {status}"
    elif ref_status < 500:
        assert status == ref_status, f"{hostile.id}: sqlite {ref_status} {ref_body}, lakehouse {status} {body}"


ARTIFACT_PATHS = {
    "list dot-dot": ("/api/2.0/mlflow/artifacts/list", "../"),
    "list dot-dot deep": ("/api/2.0/mlflow/artifacts/list", "../../../../etc"),
    "list url-encoded dot-dot": ("/api/2.0/mlflow/artifacts/list", "%2e%2e/%2e%2e"),
    "list absolute": ("/api/2.0/mlflow/artifacts/list", "/etc"),
    "list file uri elsewhere": ("/api/2.0/mlflow/artifacts/list", "file:///etc"),
    "list symlink out of the root": ("/api/2.0/mlflow/artifacts/list", "escape"),
    "get dot-dot": ("/get-artifact", "../../../../etc/passwd"),
    "get absolute": ("/get-artifact", "/etc/passwd"),
    "get through symlink out of the root": ("/get-artifact", "escape/passwd"),
    "get null byte": ("/get-artifact", "ok.txt\x00.png"),
}
"""Artifact paths that try to leave a run's artifact root (a symlink `escape` -> /etc planted in it)."""


@pytest.mark.parametrize("label", list(ARTIFACT_PATHS))
def test_server_keeps_artifact_paths_in_the_run_root(label: str, servers: dict[str, Served]) -> None:
    """Both servers refuse each path with the same 4xx and an MLflow error body, and serve nothing of /etc; the
    run's own file is served (the refusal is not of everything)."""
    route, path = ARTIFACT_PATHS[label]
    answers = {}
    for name, served in servers.items():
        exp_id = served.tracking.create_experiment(f"artifacts.{label}")
        run = served.tracking.create_run(exp_id, "u", 1, [], "r").info
        root = Path(run.artifact_uri.removeprefix("file://"))
        root.mkdir(parents=True)
        (root / "ok.txt").write_text("ok")
        (root / "escape").symlink_to("/etc")
        ok = requests.get(served.base + "/get-artifact", params={"run_id": run.run_id, "path": "ok.txt"}, timeout=60)
        assert (ok.status_code, ok.text) == (200, "ok"), (name, ok.status_code, ok.text[:300])
        resp = requests.get(served.base + route, params={"run_id": run.run_id, "path": path}, timeout=60)
        assert 400 <= resp.status_code < 500, (name, resp.status_code, resp.text[:300])
        assert {"error_code", "message"} <= set(resp.json()), (name, resp.text[:300])
        assert "root:" not in resp.text and "passwd" not in resp.text.replace(path, ""), (name, resp.text[:300])
        answers[name] = resp.status_code
    assert answers["lakehouse"] == answers["sqlite"], answers


# ------------------------------------------------------------------------------------------- a lost commit race


@contextlib.contextmanager
def losing(served: Served, table: str) -> Iterator[None]:
    """Every commit of the lake's server to `table` loses its race while inside."""
    assert served.races is not None
    served.races.write_text(table)
    try:
        yield
    finally:
        served.races.write_text("")


def test_lost_commit_race_is_503(servers: dict[str, Served]) -> None:
    """A write that keeps losing its commit race answers 503 TEMPORARILY_UNAVAILABLE (MLflow's client retries a
    503), writes nothing, and the same request succeeds once the races stop."""
    lake = servers["lakehouse"]
    ctx = Ctx(lake.tracking, None, "race")
    run_id = lake.tracking.create_run(lake.tracking.create_experiment("race"), "u", 1, [], "r").info.run_id
    request = Rest("POST", "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"})
    with losing(lake, "mlflow.params"):
        before = delta_logs(lake.lake)
        resp = send(lake.base, request, ctx)
        assert resp.status_code == 503, (resp.status_code, resp.text[:500])
        assert resp.json()["error_code"] == "TEMPORARILY_UNAVAILABLE", resp.text
        assert "may retry" in resp.json()["message"], resp.text
        assert not changed_logs(before, delta_logs(lake.lake))
    assert send(lake.base, request, ctx).status_code == 200
    assert lake.tracking.get_run(run_id).data.params == {"p": "1"}


def test_lost_race_after_the_journal_commit_is_not_an_error(servers: dict[str, Served]) -> None:
    lake = servers["lakehouse"]
    ctx = Ctx(lake.tracking, None, "race-journal")
    exp_id = lake.tracking.create_experiment("race-journal")
    request = Rest("POST", "runs/create", {"experiment_id": exp_id, "start_time": 1, "run_name": "once"})
    with losing(lake, "mlflow.runs"):
        before = delta_logs(lake.lake)
        resp = send(lake.base, request, ctx)
        journaled = "mlflow/journal" in changed_logs(before, delta_logs(lake.lake))
    assert resp.status_code == 200 or (resp.status_code == 503 and not journaled), (resp.status_code, journaled)
