"""A triggered callable runs with the user's modules importable, and a user's `jobs/` folder cannot replace ours."""

from __future__ import annotations

import json
import os
import subprocess

from jobs._triggers import call_argv


def test_callable_runs_from_the_users_folder_even_beside_a_jobs_folder(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "__init__.py").write_text("raise SystemExit('the user folder jobs/ was imported')\n")
    (tmp_path / "my_job.py").write_text(
        "import json, os\ndef run(event):\n    return json.dumps({'got': event['name'], 'cwd': os.getcwd()})\n"
    )
    env = {**os.environ, "LAKEHOUSE_EVENT": json.dumps({"name": "churn"})}
    proc = subprocess.run(
        call_argv("my_job:run", str(tmp_path)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"got": "churn", "cwd": str(tmp_path)}


def test_python_m_jobs_would_have_been_shadowed(tmp_path):
    # The hazard the argv above avoids, shown on this machine: `python -m jobs` imports the user's folder.
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "__init__.py").write_text("raise SystemExit('shadowed')\n")
    (tmp_path / "jobs" / "__main__.py").write_text("")
    proc = subprocess.run(
        [call_argv("x:y", "")[0], "-m", "jobs"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "shadowed" in proc.stderr
