"""An Airflow DAG running lakehouse-ml's jobs (a file to copy into your DAGs folder; lakehouse-ml does not depend on
Airflow). Each task calls the `lakehouse-jobs` command of the environment lakehouse-ml is installed in; its exit
code is the task's outcome (0 ok, 1 failed, 2 bad arguments, 3 a monitoring alert, 4 timed out), and every run is
also recorded in the lake's `mlflow.job_history` table.

Daily: features for the day (window by window, resuming from a failed window), then batch scoring of the day with
the Production model; monthly, monitoring of the champion. Weekly maintenance keeps the tables compacted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

LJ = "/opt/lakehouse-ml/.venv/bin/lakehouse-jobs"
LAKE = "/data/lake"
DAY = '--start "{{ ds }}" --end "{{ next_ds }}"'  # the run's data interval, UTC dates

defaults = {"retries": 1, "retry_delay": timedelta(minutes=10)}

with DAG(
    "lakehouse_daily",
    start_date=datetime(2026, 1, 1),
    schedule="@daily",
    catchup=False,
    default_args=defaults,
) as daily:
    features = BashOperator(
        task_id="features",
        bash_command=f"{LJ} features {LAKE} --pipeline my_pipelines.customers:daily_spend "
        f"--table features.customer_spend {DAY} --window 1d --primary-keys customer_id --timestamp-keys ts",
    )
    score = BashOperator(
        task_id="score",
        bash_command=f"{LJ} score {LAKE} --model churn --stage Production --keys-table raw.customers_daily "
        f"--output-table predictions.churn --time ts {DAY}",
    )
    features >> score

with DAG(
    "lakehouse_monthly_monitoring",
    start_date=datetime(2026, 1, 1),
    schedule="@monthly",
    catchup=False,
    default_args=defaults,
) as monthly:
    BashOperator(
        task_id="monitor",
        # Exit 3 (an alert) fails the task, so Airflow's alerting (email, on_failure_callback) picks it up.
        bash_command=f"{LJ} monitor {LAKE} --model churn --alias champion --table labels.churn --label churned "
        "--time ts --window month",
    )

with DAG(
    "lakehouse_weekly_maintenance",
    start_date=datetime(2026, 1, 1),
    schedule="@weekly",
    catchup=False,
    default_args=defaults,
) as weekly:
    BashOperator(task_id="maintain", bash_command=f"{LJ} maintain {LAKE} --no-dry-run --timeout 3600")
