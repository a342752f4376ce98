"""The benchmark scripts still run: a quick size of each, checking they report every line.
These are deep tests (`HYPOTHESIS_PROFILE=deep`): each script is a process of its own
that builds its data and times every step, about 40 s of a core for the library's six
and a minute for those driving the shipped `litemlops run`.

Timings are not asserted here (the machines are shared and noisy); the scripts
print ratios for people to read. This only keeps them from rotting.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
LINE = re.compile(r"^(\S+): .* target(<=|>=)\S+( \S+)? +(PASS|MISS)$", re.MULTILINE)

# Scripts driving the shipped `litemlops run`, at their smallest, on one bootstrapped
# home they copy; and the result lines each must print.
SHIPPED = {
    "serving.py": (
        ["--size", "XS", "--deployments"],
        {
            "inference_rps_c8",
            "inference_p99_c8",
            "server_cpu_per_request_c8",
            "keepalive_second_request_p50",
            "inference_p99_during_training_c8",
            "inference_p99_during_monitoring_c8",
            "server_rss",
            "cold_start_existing_home",
            "deployment_ab_rps_c8",
            "deployment_shadow_p99_c8",
            "deployment_share_choice",
            "deployment_thompson_choice",
        },
    ),
    "dashboard.py": (
        ["--size", "XS"],
        {
            *(f"dashboard_first_render_{page}" for page in (
                "overview", "models", "model", "compare", "experiments", "metric_charts",
                "pipelines", "pipeline_run", "features", "monitoring", "monitoring_report",
                "lineage", "docs",
            )),
            "dashboard_open_serving_rps_c8",
        },
    ),
    "durability.py": (["--trials", "1"], {"answered_events_lost", "trials_losing_events"}),
    "soak.py": (
        ["--seconds", "2", "--rate", "100"],
        {
            "soak_rss_last_vs_first",
            "soak_predictions_lost_from_history",
            "soak_history_bytes_per_prediction",
        },
    ),
}


def run_script(script: str, *args: str) -> str:
    if not BENCHMARKS.is_dir():
        pytest.skip("benchmarks/ is not part of this checkout")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# The smallest size of each script, XS (the suite's): every step of the script, on less
# data and fewer timed repeats.
QUICK = {"pit.py": "XS", "online.py": "XS", "materialize.py": "XS", "tracking.py": "XS",
         "pipelines.py": "XS", "drift.py": "XS"}


@pytest.mark.slow
@pytest.mark.deep
@pytest.mark.parametrize("script", list(QUICK))
def test_benchmark_runs_and_reports(script):
    out = run_script(script, "--size", QUICK[script])

    assert len(LINE.findall(out)) >= 2, out


@pytest.fixture(scope="module")
def bootstrapped_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("benchmarks") / "home"
    subprocess.run(
        [sys.executable, "-m", "litemlops", "run", "--home", str(home), "--once"],
        capture_output=True, check=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("LITEMLOPS_")},
    )
    return home


@pytest.mark.slow
@pytest.mark.deep  # a home bootstrapped, then `run` started and loaded by each: a minute
@pytest.mark.parametrize("script", sorted(SHIPPED))
def test_benchmark_of_the_shipped_command_runs_and_reports_every_line(script, bootstrapped_home):
    args, expected = SHIPPED[script]

    out = run_script(script, *args, "--home", str(bootstrapped_home))

    assert expected <= {name for name, *_ in LINE.findall(out)}, out
    if script == "serving.py":  # every answer of ours left its event in the log or history
        assert re.search(r"^# events: .* one each$", out, re.MULTILINE), out


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--pipeline-rounds", "0"], "--pipeline-rounds is 0: at least 1"),
        (["--deployments", "--deployment-rounds", "-2"], "--deployment-rounds is -2: at least 1"),
        (["--deployment-rounds", "20"], "measures the deployments: add --deployments"),
        (["--pipeline-rounds", "x"], "invalid int value: 'x'"),
    ],
)
def test_serving_refuses_a_bad_round_count_before_starting_anything(args, error):
    if not BENCHMARKS.is_dir():
        pytest.skip("benchmarks/ is not part of this checkout")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "serving.py"), *args],
        capture_output=True, text=True, timeout=60, cwd=BENCHMARKS.parent,
    )
    assert result.returncode == 2 and error in result.stderr, result.stderr
    assert result.stdout == ""  # nothing measured, nothing started
