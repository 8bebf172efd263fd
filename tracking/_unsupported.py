"""The MLflow tracking-store methods this store does not implement, each declared by name.

MLflow 3 grew tracing, GenAI evaluation datasets, scorers, review queues, prompts linked to traces, the AI gateway
and MCP servers on its `AbstractStore`. This store keeps ML tracking (experiments, runs, params, metrics, tags,
inputs, logged models) and traces (`_store_traces`: traces, spans, tags, metadata, assessments, run links, trace
metrics); every method listed here (the GenAI evaluation family and the rest) raises
MlflowException(NOT_IMPLEMENTED) naming itself, so the MLflow client
and server answer a clear error instead of a Python one. `tests/tracking/test_public_api.py` checks that each
public method of MLflow's `AbstractStore` is implemented or listed here, so an MLflow upgrade cannot add one
silently. Implementing one means deleting its line here.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import NOT_IMPLEMENTED


def _not_supported(name: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise MlflowException(
            f"{name} is not supported by the lakehouse tracking store: it stores ML tracking (experiments, runs, "
            "params, metrics, tags, inputs, logged models) and traces (with spans and assessments); the GenAI "
            "evaluation family (evaluation datasets, scorers, labeling and review queues, prompt links, gateway, "
            "MCP) is out of scope. Use a sqlite:/// or database tracking URI for them.",
            NOT_IMPLEMENTED,
        )

    method.__name__ = name
    method.__doc__ = "Not supported by the lakehouse store: raises MlflowException(NOT_IMPLEMENTED)."
    return method


class UnsupportedStoreMethods:
    """Mixed in before `AbstractStore`: its methods that this store does not implement, by name."""

    add_dataset_to_experiments = _not_supported("add_dataset_to_experiments")
    add_guardrail_to_endpoint = _not_supported("add_guardrail_to_endpoint")
    add_items_to_review_queue = _not_supported("add_items_to_review_queue")
    archive_traces = _not_supported("archive_traces")
    attach_model_to_endpoint = _not_supported("attach_model_to_endpoint")
    calculate_trace_filter_correlation = _not_supported("calculate_trace_filter_correlation")
    create_budget_policy = _not_supported("create_budget_policy")
    create_dataset = _not_supported("create_dataset")
    create_endpoint_binding = _not_supported("create_endpoint_binding")
    create_gateway_endpoint = _not_supported("create_gateway_endpoint")
    create_gateway_guardrail = _not_supported("create_gateway_guardrail")
    create_gateway_model_definition = _not_supported("create_gateway_model_definition")
    create_gateway_secret = _not_supported("create_gateway_secret")
    create_issue = _not_supported("create_issue")
    create_label_schema = _not_supported("create_label_schema")
    create_mcp_access_endpoint = _not_supported("create_mcp_access_endpoint")
    create_mcp_server = _not_supported("create_mcp_server")
    create_mcp_server_version = _not_supported("create_mcp_server_version")
    create_review_queue = _not_supported("create_review_queue")
    delete_budget_policy = _not_supported("delete_budget_policy")
    delete_dataset = _not_supported("delete_dataset")
    delete_dataset_records = _not_supported("delete_dataset_records")
    delete_dataset_tag = _not_supported("delete_dataset_tag")
    delete_endpoint_binding = _not_supported("delete_endpoint_binding")
    delete_gateway_endpoint = _not_supported("delete_gateway_endpoint")
    delete_gateway_endpoint_tag = _not_supported("delete_gateway_endpoint_tag")
    delete_gateway_guardrail = _not_supported("delete_gateway_guardrail")
    delete_gateway_model_definition = _not_supported("delete_gateway_model_definition")
    delete_gateway_secret = _not_supported("delete_gateway_secret")
    delete_label_schema = _not_supported("delete_label_schema")
    delete_mcp_access_endpoint = _not_supported("delete_mcp_access_endpoint")
    delete_mcp_server = _not_supported("delete_mcp_server")
    delete_mcp_server_alias = _not_supported("delete_mcp_server_alias")
    delete_mcp_server_tag = _not_supported("delete_mcp_server_tag")
    delete_mcp_server_version = _not_supported("delete_mcp_server_version")
    delete_mcp_server_version_tag = _not_supported("delete_mcp_server_version_tag")
    delete_review_queue = _not_supported("delete_review_queue")
    delete_scorer = _not_supported("delete_scorer")
    detach_model_from_endpoint = _not_supported("detach_model_from_endpoint")
    find_completed_sessions = _not_supported("find_completed_sessions")
    get_active_online_scorers = _not_supported("get_active_online_scorers")
    get_budget_policy = _not_supported("get_budget_policy")
    get_dataset = _not_supported("get_dataset")
    get_dataset_experiment_ids = _not_supported("get_dataset_experiment_ids")
    get_gateway_endpoint = _not_supported("get_gateway_endpoint")
    get_gateway_guardrail = _not_supported("get_gateway_guardrail")
    get_gateway_model_definition = _not_supported("get_gateway_model_definition")
    get_issue = _not_supported("get_issue")
    get_label_schema = _not_supported("get_label_schema")
    get_label_schema_by_name = _not_supported("get_label_schema_by_name")
    get_latest_mcp_server_version = _not_supported("get_latest_mcp_server_version")
    get_mcp_access_endpoint = _not_supported("get_mcp_access_endpoint")
    get_mcp_server = _not_supported("get_mcp_server")
    get_mcp_server_version = _not_supported("get_mcp_server_version")
    get_mcp_server_version_by_alias = _not_supported("get_mcp_server_version_by_alias")
    get_mcp_server_versions_for_trace = _not_supported("get_mcp_server_versions_for_trace")
    get_online_scoring_configs = _not_supported("get_online_scoring_configs")
    get_online_trace_details = _not_supported("get_online_trace_details")
    get_or_create_user_queue = _not_supported("get_or_create_user_queue")
    get_review_queue = _not_supported("get_review_queue")
    get_review_queue_by_name = _not_supported("get_review_queue_by_name")
    get_scorer = _not_supported("get_scorer")
    get_secret_info = _not_supported("get_secret_info")
    link_mcp_server_versions_to_trace = _not_supported("link_mcp_server_versions_to_trace")
    link_prompts_to_trace = _not_supported("link_prompts_to_trace")
    list_budget_policies = _not_supported("list_budget_policies")
    list_endpoint_bindings = _not_supported("list_endpoint_bindings")
    list_endpoint_guardrail_configs = _not_supported("list_endpoint_guardrail_configs")
    list_gateway_endpoints = _not_supported("list_gateway_endpoints")
    list_gateway_guardrails = _not_supported("list_gateway_guardrails")
    list_gateway_model_definitions = _not_supported("list_gateway_model_definitions")
    list_label_schemas = _not_supported("list_label_schemas")
    list_review_queue_items = _not_supported("list_review_queue_items")
    list_review_queues = _not_supported("list_review_queues")
    list_scorer_versions = _not_supported("list_scorer_versions")
    list_scorers = _not_supported("list_scorers")
    list_scorers_across_experiments = _not_supported("list_scorers_across_experiments")
    list_secret_infos = _not_supported("list_secret_infos")
    register_scorer = _not_supported("register_scorer")
    remove_dataset_from_experiments = _not_supported("remove_dataset_from_experiments")
    remove_guardrail_from_endpoint = _not_supported("remove_guardrail_from_endpoint")
    remove_items_from_review_queue = _not_supported("remove_items_from_review_queue")
    search_issues = _not_supported("search_issues")
    search_mcp_access_endpoints = _not_supported("search_mcp_access_endpoints")
    search_mcp_server_versions = _not_supported("search_mcp_server_versions")
    search_mcp_servers = _not_supported("search_mcp_servers")
    set_dataset_tags = _not_supported("set_dataset_tags")
    set_gateway_endpoint_tag = _not_supported("set_gateway_endpoint_tag")
    set_mcp_server_alias = _not_supported("set_mcp_server_alias")
    set_mcp_server_tag = _not_supported("set_mcp_server_tag")
    set_mcp_server_version_tag = _not_supported("set_mcp_server_version_tag")
    set_review_queue_item_status = _not_supported("set_review_queue_item_status")
    sum_gateway_trace_cost = _not_supported("sum_gateway_trace_cost")
    unlink_traces_from_run = _not_supported("unlink_traces_from_run")
    update_budget_policy = _not_supported("update_budget_policy")
    update_endpoint_guardrail_config = _not_supported("update_endpoint_guardrail_config")
    update_gateway_endpoint = _not_supported("update_gateway_endpoint")
    update_gateway_model_definition = _not_supported("update_gateway_model_definition")
    update_gateway_secret = _not_supported("update_gateway_secret")
    update_issue = _not_supported("update_issue")
    update_label_schema = _not_supported("update_label_schema")
    update_mcp_access_endpoint = _not_supported("update_mcp_access_endpoint")
    update_mcp_server = _not_supported("update_mcp_server")
    update_mcp_server_version = _not_supported("update_mcp_server_version")
    update_review_queue = _not_supported("update_review_queue")
    upsert_dataset_records = _not_supported("upsert_dataset_records")
    upsert_online_scoring_config = _not_supported("upsert_online_scoring_config")
