"""Airflow DAG: run lakestitch nightly for the logical date {{ ds }}.

lakestitch's exit codes drive the task state:
  0  the run was published (runs/<ds>/_SUCCESS and `latest` written)
  2  bad input or configuration: retrying will not help, so the task fails without retries
  1  any other failure (storage, crash): Airflow retries it
Nothing is published on a non-zero exit, and rerunning a date reproduces it, so clearing a
task instance is always safe.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.exceptions import AirflowFailException
from airflow.operators.python import PythonOperator
import subprocess

LAKESTITCH = "/opt/lakestitch/lakestitch"
JOB = "/opt/lakestitch/jobs/nightly.toml"


def run_lakestitch(ds: str, **_context) -> None:
    proc = subprocess.run(
        [LAKESTITCH, "run", "--job", JOB, "--date", ds,
         "--input", "s3://acme-lake", "--output", "s3://acme-stitched"],
        check=False,
    )
    if proc.returncode == 2:
        # Bad input or configuration: fail now, no retries.
        raise AirflowFailException("lakestitch refused the input or the job file (exit 2)")
    if proc.returncode != 0:
        raise RuntimeError(f"lakestitch failed with exit code {proc.returncode}")


with DAG(
    dag_id="lakestitch_nightly",
    start_date=datetime(2026, 11, 1),
    schedule="30 2 * * *",
    catchup=True,
    max_active_runs=1,  # runs of one output location must not overlap
    default_args={"retries": 3, "retry_delay": timedelta(minutes=10)},
) as dag:
    PythonOperator(
        task_id="stitch",
        python_callable=run_lakestitch,
        op_kwargs={"ds": "{{ ds }}"},
    )
