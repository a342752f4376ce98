"""The demo traffic generator against the served app (the CLI passes an httpx client)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from litemlops.demo.simulate import DriverHistory, SimulationError, draw_features, simulate

DRIVERS = list(range(1001, 1006))


def test_normal_traffic_pushes_asks_and_posts_labels(client, token, served_clock, read_events):
    summary = simulate(client, token, DRIVERS, n=12, labels=True, seed=1, clock=served_clock)
    assert summary.to_dict() == {
        "requests": 12, "pushed_rows": 60, "labels": 12, "versions": {"1": 12},
    }
    served = [e for e in read_events("prediction_served") if e["request_id"].startswith("sim-")]
    labelled = read_events("feedback_received")
    assert len(served) == 12
    assert {e["request_id"] for e in labelled} == {e["request_id"] for e in served}
    assert {e["label"] for e in labelled} <= {0, 1}


def test_drifted_traffic_moves_the_features_the_server_sees(client, token, served_clock,
                                                           read_events):
    simulate(client, token, DRIVERS, n=10, drift=True, seed=2, clock=served_clock)
    served = [e for e in read_events("prediction_served") if e["request_id"].startswith("sim-")]
    conv = [f["conv_rate"] for e in served[-10:] for f in e["features"]]
    assert sum(conv) / len(conv) > 0.75  # normal traffic centres on 0.5


def test_the_drawn_features_shift_as_documented():
    import numpy as np

    rng = np.random.default_rng(0)
    drivers = list(range(5000))
    normal = draw_features(rng, drivers, drift=False)
    drifted = draw_features(rng, drivers, drift=True)
    assert drifted["conv_rate"].mean() > normal["conv_rate"].mean() + 0.25
    assert drifted["acc_rate"].mean() < normal["acc_rate"].mean() - 0.25
    assert drifted["avg_daily_trips"].mean() > 2.5 * normal["avg_daily_trips"].mean()


@given(
    owners=st.lists(st.integers(1, 6), min_size=1, max_size=40),
    asked=st.lists(st.integers(1, 8), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
    drift=st.booleans(),
)
def test_a_draw_from_the_history_is_a_uniform_pick_among_the_drivers_own_rows(
    owners, asked, seed, drift
):
    """Each driver gets one of its own rows, in pool order, picked by the generator's next
    integer; a driver without rows one of all rows: as filtering the frame per driver."""
    n = len(owners)
    pool = pd.DataFrame({
        "driver_id": owners,
        "conv_rate": np.linspace(0.0, 1.0, n),
        "acc_rate": np.linspace(1.0, 0.0, n),
        "avg_daily_trips": np.arange(n, dtype=np.int64) * 10,
    })
    expected_rng, rng = np.random.default_rng(seed), np.random.default_rng(seed)
    rows = []
    for driver in asked:
        own = pool[pool["driver_id"] == driver]
        source = own if len(own) else pool
        rows.append(source.iloc[int(expected_rng.integers(len(source)))])

    drawn = draw_features(rng, asked, drift=drift, pool=DriverHistory.of(pool))

    shift = {"conv_rate": 0.35, "acc_rate": -0.35} if drift else {}
    for name in ("conv_rate", "acc_rate"):
        want = np.clip([r[name] + shift.get(name, 0.0) for r in rows], 0.0, 1.0)
        assert drawn[name].tolist() == want.tolist()
    trips = [r["avg_daily_trips"] * (3 if drift else 1) for r in rows]
    assert drawn["avg_daily_trips"].tolist() == trips
    assert rng.integers(2**32) == expected_rng.integers(2**32)  # as many draws taken


def test_a_refusal_is_a_clear_error(client):
    with pytest.raises(SimulationError, match="answered 401"):
        simulate(client, "not-the-token-at-all", DRIVERS, n=1)
    with pytest.raises(Exception, match="need at least 5 drivers"):
        simulate(client, "x" * 20, DRIVERS[:2], n=1)


def test_the_cli_says_when_no_server_serves_the_home(tmp_path):
    from click.testing import CliRunner

    from litemlops.cli.main import cli

    assert CliRunner().invoke(cli, ["init", "--home", str(tmp_path / "h")]).exit_code == 0
    out = CliRunner().invoke(cli, ["simulate", "--home", str(tmp_path / "h"), "-n", "3"])
    assert out.exit_code == 1
    assert "no server for home" in out.output and "start `litemlops run` first" in out.output


def test_an_empty_history_draws_from_the_population_as_no_history_does():
    empty = DriverHistory({"conv_rate": np.array([]), "acc_rate": np.array([]),
                           "avg_daily_trips": np.array([])}, {})  # fmt: skip
    drawn = draw_features(np.random.default_rng(3), [1001, 1002], drift=False, pool=empty)
    alone = draw_features(np.random.default_rng(3), [1001, 1002], drift=False)

    assert {k: v.tolist() for k, v in drawn.items()} == {k: v.tolist() for k, v in alone.items()}
