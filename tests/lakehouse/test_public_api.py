import lakehouse
import lakehouse.errors


def test_lakehouse_all_is_pinned():
    assert lakehouse.__all__ == [
        "Change",
        "Covering",
        "HistoryEntry",
        "Lakehouse",
        "LeanTable",
        "MergeResult",
        "OptimizeResult",
        "RestoreResult",
        "RetryPolicy",
        "Row",
        "Settings",
        "TableInfo",
        "VacuumResult",
        "WriteResult",
        "delta_classes_loaded",
        "errors",
        "find_tables",
        "is_object_store",
        "local_spark",
        "prepare_python_workers",
        "retry_on_conflict",
        "settings",
        "table_path",
        "to_spark_dataframe",
        "to_utc",
    ]
    assert lakehouse.__all__ == sorted(lakehouse.__all__)


def test_errors_all_is_pinned_and_share_a_base():
    assert lakehouse.errors.__all__ == sorted(lakehouse.errors.__all__)
    for name in lakehouse.errors.__all__:
        assert issubclass(getattr(lakehouse.errors, name), lakehouse.errors.LakehouseError)
    assert lakehouse.errors.ConcurrentModificationError.retryable is True
    assert lakehouse.errors.SchemaMismatchError.retryable is False
