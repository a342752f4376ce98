"""`python -m litemlops run` as a user starts it: a process serving a home until SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

SMALL = {"LITEMLOPS_DEMO_DRIVERS": "10", "LITEMLOPS_DEMO_HOURS": "72",
         "LITEMLOPS_DEMO_LABELS": "400"}


def start(home, *args, env=None):
    environment = {**os.environ, **SMALL, **(env or {})}
    environment.pop("LITEMLOPS_HOME", None)
    return subprocess.Popen(
        [sys.executable, "-m", "litemlops", "run", "--home", str(home), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )


def wait_for_url(process, timeout=60):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("serving http://"):
            return line.split()[1], lines
    process.kill()
    raise AssertionError("no URL printed:\n" + "".join(lines) + process.stderr.read())


def wait_ready(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/ready", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


@pytest.mark.slow
def test_run_serves_then_stops_cleanly_on_sigterm_with_every_event_written(tmp_path):
    home = tmp_path / "home"
    process = start(home)
    try:
        url, printed = wait_for_url(process)
        assert "registered driver_ranker v1 as champion" in "".join(printed)
        assert wait_ready(url) == {"ready": True, "model": "driver_ranker", "version": 1}
        ids = [1001, 1002, 1003, 1004, 1005]
        answers = []
        with httpx.Client(base_url=url, timeout=5) as client:
            for i in range(50):
                response = client.post("/inference",
                                       json={"request_id": f"r{i}", "driver_ids": ids})
                assert response.status_code == 200, response.text
                answers.append(response.json())
            metrics = client.get("/metrics").text
        assert all(a["prediction"] in ids and a["version"] == 1 for a in answers)
        assert ('litemlops_requests_total{endpoint="/inference",model="driver_ranker",'
                'status="200",version="1"} 50.0') in metrics
        assert 'litemlops_pipeline_runs{pipeline="training",state="success"} 1.0' in metrics
        # A second owner of the home is refused, clearly, while this one serves.
        second = start(home)
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert f"is in use by process {process.pid}" in err
        # Other commands say where the home is served instead.
        listing = subprocess.run(
            [sys.executable, "-m", "litemlops", "pipelines", "runs", "--home", str(home)],
            capture_output=True, text=True, timeout=60,
        )
        assert listing.returncode == 1
        assert f"it serves {url}: use its HTTP API meanwhile" in listing.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, process.stderr.read()
    assert not (home / "server.json").exists()
    events = [json.loads(line) for line in (home / "logs" / "events.jsonl").read_text()
              .splitlines()]
    served = [e for e in events if e["event"] == "prediction_served"]
    assert [e["request_id"] for e in served] == [f"r{i}" for i in range(50)]
    assert served[0]["features"][0].keys() == {"conv_rate", "acc_rate", "avg_daily_trips"}
    assert events[-1]["event"] == "server_stopped" or any(
        e["event"] == "server_stopped" for e in events[-5:]
    )


def test_a_public_interface_needs_an_explicit_token(tmp_path):
    home = tmp_path / "home"
    process = start(home, "--host", "0.0.0.0")
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "refusing to listen on '0.0.0.0' without an explicit admin token" in err
    assert not (home / "features.duckdb").exists()  # refused before any set-up
    assert (home / "token").stat().st_mode & 0o777 == 0o600
