"""Airflow: one `driftloop tick` per hour (driftloop's own schedule decides what to do).

Copy into the DAGs folder of an Airflow whose workers have driftloop and the project folder
(DRIFTLOOP_PROJECT, default /opt/project). Exit code 99 (nothing to do) and 75 (another
controller holds the lease) show as "skipped"; 1 fails the task and Airflow retries it.
The store URL comes from the worker's environment (DRIFTLOOP_STORE_URL), never from the DAG.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.standard.operators.bash import BashOperator

PROJECT = os.environ.get("DRIFTLOOP_PROJECT", "/opt/project")

with DAG(
    dag_id="driftloop_tick",
    schedule="@hourly",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["driftloop"],
) as dag:
    BashOperator(
        task_id="tick",
        bash_command=f"driftloop tick --json --spec {PROJECT}/driftloop.yaml",
        skip_on_exit_code=[99, 75],
        do_xcom_push=True,  # the tick's JSON line becomes the task's XCom
    )
