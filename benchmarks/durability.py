"""Durability: `kill -9` of the shipped `run` under load loses no event it answered for.

Each trial starts `python -m litemlops run --port 0` on a fresh copy of a
bootstrapped home, sends it predictions (`POST /inference`) and labels for
answered predictions (`POST /feedback`, with the admin token) from several
keep-alive connections for a random 0.5-2 s, then kills it and its process
group with SIGKILL. Every request answered 200 (a prediction) or 202 (a label)
must then have its event in the home's log (`prediction_served`,
`feedback_received`), read here as plain JSON lines.
Run: `.venv/bin/python benchmarks/durability.py --trials 20`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _harness import report
from _load import Conn, InferenceRequests, Pool, post
from _shipped import HOST, LogRead, Served, bootstrap, copy_home, events

CLIENTS = 8
LABEL_EVERY = 3  # one request in this many is a label for an answered prediction
LOAD_SECONDS = (0.5, 2.0)


@dataclass
class Trial:
    seconds: float
    predictions: set[str]  # request ids answered 200
    labels: set[str]  # request ids whose label was answered 202
    errors: int  # answers other than 200/202 before the kill
    logged_predictions: set[str]
    logged_labels: set[str]
    read: LogRead

    @property
    def predictions_lost(self) -> int:
        return len(self.predictions - self.logged_predictions)

    @property
    def labels_lost(self) -> int:
        return len(self.labels - self.logged_labels)


def load_then_kill(served: Served, seconds: float, tag: str, rng: random.Random) -> Trial:
    """Predictions and labels from CLIENTS connections; SIGKILL after `seconds`."""
    pool = Pool(HOST, served.port)
    build = InferenceRequests(HOST, served.port, [1001, 1002, 1003, 1004, 1005])
    auth = {"authorization": f"Bearer {served.token}"}
    predictions: set[str] = set()
    labels: set[str] = set()
    answered: list[str] = []  # predictions in answer order, to pick labels from
    errors = 0
    sent = 0

    def send(conn: Conn) -> None:
        nonlocal sent
        sent += 1
        rid = f"{tag}-{sent}"
        if answered and sent % LABEL_EVERY == 0:
            target = rng.choice(answered)
            body = json.dumps({"request_id": target, "label": rng.randint(0, 1)}).encode()
            pool.send(conn, post(HOST, served.port, "/feedback", body, auth), ("label", target))
        else:
            pool.send(conn, build(rid), ("prediction", rid))

    for _ in range(CLIENTS):
        send(pool.open())
    deadline = time.perf_counter() + seconds
    killed = False
    try:
        while pool.busy:
            if not killed and time.perf_counter() >= deadline:
                served.kill()
                killed = True
            for conn, status, _, _ in pool.poll(0.01):
                kind, rid = conn.key
                if kind == "prediction" and status == 200:
                    predictions.add(rid)
                    answered.append(rid)
                elif kind == "label" and status == 202:
                    labels.add(rid)
                elif status is not None:
                    errors += 1
                if not killed and not conn.closed:
                    send(conn)
            if not killed and pool.busy < CLIENTS:  # a connection broke: replace it
                send(pool.open())
    finally:
        pool.close()
        served.kill()
    read = LogRead()
    logged: dict[str, set[str]] = {"prediction_served": set(), "feedback_received": set()}
    for event in events(served.home, read):
        if event.get("event") in logged and isinstance(event.get("request_id"), str):
            logged[event["event"]].add(event["request_id"])
    return Trial(
        seconds,
        predictions,
        labels,
        errors,
        logged["prediction_served"],
        logged["feedback_received"],
        read,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="kills (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="of the load times and labels")
    parser.add_argument(
        "--home",
        type=Path,
        help="a home `run --once` bootstrapped, copied for each trial instead of making one",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print("# durability: kill -9 of `litemlops run` under /inference and /feedback load")
    print(
        f"# {args.trials} trials: a fresh copy of a bootstrapped home each, {CLIENTS} keep-alive "
        f"connections, one request in {LABEL_EVERY} a label, SIGKILL of the process group after "
        f"{LOAD_SECONDS[0]:g}-{LOAD_SECONDS[1]:g} s (seed {args.seed})"
    )
    sys.stdout.flush()
    with tempfile.TemporaryDirectory(prefix="litemlops-durability-") as name:
        tmp = Path(name)
        template = args.home
        if template is None:
            template = tmp / "template"
            print(f"# bootstrapped a home in {bootstrap(template, tmp / 'bootstrap.log'):.1f} s")
        trials = []
        for n in range(args.trials):
            home = copy_home(template, tmp / f"trial-{n}")
            served = Served.start(home, tmp / f"trial-{n}.log")
            trial = load_then_kill(served, rng.uniform(*LOAD_SECONDS), f"t{n}", rng)
            trials.append(trial)
            print(
                f"# trial {n:2d}: killed after {trial.seconds:.2f} s; answered "
                f"{len(trial.predictions):5d} predictions, {len(trial.labels):4d} labels; "
                f"events missing: {trial.predictions_lost} predictions, {trial.labels_lost} "
                f"labels; {trial.read.torn} torn line(s); {trial.errors} other answers"
            )
            sys.stdout.flush()
    predictions = sum(len(t.predictions) for t in trials)
    labels = sum(len(t.labels) for t in trials)
    lost_p = sum(t.predictions_lost for t in trials)
    lost_l = sum(t.labels_lost for t in trials)
    print(
        f"# in all: {predictions:,} predictions and {labels:,} labels answered; "
        f"{lost_p:,} and {lost_l:,} of their events missing after the kill"
    )
    report("answered_events_lost", lost_p + lost_l, "events", 0, reference=0)
    report("answered_predictions_lost", lost_p, "events", 0, reference=0)
    report("answered_labels_lost", lost_l, "events", 0, reference=0)
    losing = sum(1 for t in trials if t.predictions_lost or t.labels_lost)
    report("trials_losing_events", losing, "trials", 0, reference=0)


if __name__ == "__main__":
    main()
