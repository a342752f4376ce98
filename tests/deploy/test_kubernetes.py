"""The manifests under deploy/kubernetes are valid Kubernetes objects and agree with what
the server really does: the routes its probes ask, the port and interface it listens
on, where its home is, how its token and config reach it, how long it takes to stop.

No cluster runs here: each document is read into the Kubernetes API's own models (the
`kubernetes` client's), with every key checked against the model's fields, since the
client drops keys it does not know.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from starlette.testclient import TestClient

from litemlops.config import Config
from litemlops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"

#: SIGTERM to exit of `python -m litemlops run` on the demo's default home, measured by
#: hand (see the comment in statefulset.yaml): idle 0.34 s, under /inference load 0.37 s,
#: with a training run in flight 0.39 s.
MEASURED_SHUTDOWN_SECONDS = 0.39
#: The most resident memory of the server and its workers together (PSS, so pages a
#: forked worker shares with the server count once), in MiB: the set-up and a
#: random-forest training run on the demo's default home.
MEASURED_PEAK_MIB = 472 * 1000**2 / 1024**2


def documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) of every YAML document under deploy/kubernetes."""
    found = []
    for path in sorted([*MANIFESTS.glob("*.yaml"), *MANIFESTS.glob("*.yml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append((path.name, doc))
    return found


def model_name(doc: dict[str, Any]) -> str:
    """The client's model for a document: apiVersion apps/v1, kind StatefulSet -> V1StatefulSet."""
    version = doc["apiVersion"].rsplit("/", 1)[-1]
    return version[0].upper() + version[1:] + doc["kind"]


def unknown_keys(data: Any, type_name: str, where: str = "") -> list[str]:
    """Where `data` has a key its Kubernetes model has no field for (the client ignores
    such keys, so a misspelled field would otherwise vanish unnoticed)."""
    inner = re.fullmatch(r"List\[(.+)\]", type_name)
    if inner and isinstance(data, list):
        items = enumerate(data)
        return [p for i, item in items for p in unknown_keys(item, inner[1], f"{where}[{i}]")]
    inner = re.fullmatch(r"Dict\[str, (.+)\]", type_name)
    if inner and isinstance(data, dict):
        return [p for k, v in data.items() for p in unknown_keys(v, inner[1], f"{where}.{k}")]
    model = getattr(k8s, type_name, None)
    if model is None or not isinstance(data, dict):
        return []  # a scalar, or an `object` (int-or-string, quantity): the model checks it
    fields = {key: attr for attr, key in model.attribute_map.items()}
    problems = []
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{where}.{key} (no such field of {type_name})")
        else:
            problems += unknown_keys(value, model.openapi_types[fields[key]], f"{where}.{key}")
    return problems


def parse(doc: dict[str, Any]) -> Any:
    """The document as the client's model; raises on a wrong type or a missing field."""
    problems = unknown_keys(doc, model_name(doc))
    if problems:
        raise ValueError(f"unknown fields: {problems}")
    return k8s.ApiClient().deserialize(json.dumps(doc), model_name(doc), "application/json")


def one(kind: str) -> dict[str, Any]:
    (doc,) = [doc for _, doc in documents() if doc["kind"] == kind]
    return doc


def container(statefulset: dict[str, Any] | None = None) -> dict[str, Any]:
    (found,) = (statefulset or one("StatefulSet"))["spec"]["template"]["spec"]["containers"]
    return found


def flag(command: list[str], name: str) -> str:
    """The value of `--name VALUE` in a command."""
    return command[command.index(name) + 1]


def container_port(found: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (a number, or the name of a container port) as a number."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in found["ports"] if p.get("name") == port]
    return int(number)


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity ("640Mi", "1Gi", "500M") in MiB."""
    units = {"": 1 / 1024**2, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "k": 1e3 / 1024**2,
             "M": 1e6 / 1024**2, "G": 1e9 / 1024**2}
    match = re.fullmatch(r"([\d.]+)([A-Za-z]*)", quantity)
    assert match is not None, quantity
    return float(match[1]) * units[match[2]]


def test_every_manifest_is_a_kubernetes_object_with_known_fields_and_right_types():
    kinds = set()
    for name, doc in documents():
        parsed = parse(doc)
        assert type(parsed).__name__ == model_name(doc), name
        kinds.add(doc["kind"])
    assert kinds == {"StatefulSet", "Service", "ConfigMap", "Secret"}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda c: c["readinessProbe"].update(periodSecond=5), "periodSecond"),
        (lambda c: c["ports"][0].update(containerPort="8000"), "containerPort"),
        (lambda c: c["readinessProbe"]["httpGet"].update(path=5), "path"),
        (lambda c: c.pop("name"), "name"),
    ],
    ids=["misspelled field", "number as a string", "wrong type", "missing field"],
)
def test_the_check_refuses_a_misspelled_field_a_wrong_type_and_a_missing_one(change, error):
    broken = copy.deepcopy(one("StatefulSet"))
    change(container(broken))

    with pytest.raises(ValueError, match=error):  # pydantic's ValidationError is a ValueError
        parse(broken)


def test_one_replica_owns_the_home_on_its_volume_claim():
    statefulset = one("StatefulSet")
    found = container(statefulset)
    home = Path(flag(found["command"], "--home"))
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: Path(m["mountPath"]) for m in found["volumeMounts"]}

    assert statefulset["spec"]["replicas"] == 1
    assert claim["metadata"]["name"] in mounts
    assert home.is_relative_to(mounts[claim["metadata"]["name"]])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_the_command_is_run_on_the_home_listening_beyond_loopback_on_the_container_port():
    from litemlops.server.security import is_loopback

    found = container()
    command = found["command"] + found.get("args", [])

    assert command[:4] == ["python", "-m", "litemlops", "run"]
    assert not is_loopback(flag(command, "--host"))
    assert int(flag(command, "--port")) == container_port(found, "http")


def test_the_service_sends_to_the_container_port_of_the_pods_it_selects():
    service, statefulset = one("Service"), one("StatefulSet")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    (port,) = service["spec"]["ports"]

    assert service["spec"]["selector"].items() <= labels.items()
    assert container_port(container(statefulset), port["targetPort"]) == 8000
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]


def test_probes_ask_routes_the_server_has_and_need_no_token_from_outside(tmp_path):
    from litemlops.platform import Platform
    from litemlops.server import create_app

    found = container()
    probes = {kind: found[kind]["httpGet"] for kind in
              ("startupProbe", "livenessProbe", "readinessProbe")}
    config = Config.load(tmp_path / "home", env={}, overrides={"logging.console": False})
    config.ensure_home()
    with Platform(config) as platform:
        app = create_app(platform, start_scheduler=False)
        paths = {getattr(route, "path", None) for route in app.routes}
        # The kubelet probes from the node, not loopback, and sends no token;
        # TestClient's client address is not loopback either.
        with TestClient(app) as http:
            health = http.get(probes["livenessProbe"]["path"])
            ready = http.get(probes["readinessProbe"]["path"])

    assert {p["path"] for p in probes.values()} <= paths
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/health"
    assert probes["readinessProbe"]["path"] == "/ready"
    assert {container_port(found, p["port"]) for p in probes.values()} == {8000}
    assert health.status_code == 200
    # No champion in an empty home: not ready, and it says why.
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"


def test_the_admin_token_comes_from_the_secret_and_the_placeholder_is_refused(tmp_path):
    from litemlops.server.security import admin_token

    secret = one("Secret")
    (variable,) = [e for e in container()["env"] if e["name"] == "LITEMLOPS_SERVER_TOKEN"]
    ref = variable["valueFrom"]["secretKeyRef"]
    shipped = {**secret.get("data", {}), **secret.get("stringData", {})}

    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in shipped
    # Applied as it is, the Secret must not give a server with a token from a public file.
    config = Config.load(tmp_path, env={"LITEMLOPS_SERVER_TOKEN": shipped[ref["key"]]})
    with pytest.raises(ConfigError, match="at least 16 characters"):
        admin_token(config)


def test_the_configmap_is_a_config_toml_litemlops_loads_and_reaches_the_home(tmp_path):
    statefulset = one("StatefulSet")
    configmap = one("ConfigMap")
    pod = statefulset["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    (init,) = pod["initContainers"]
    (mount,) = [m for m in init["volumeMounts"] if m["name"] == volume["name"]]
    home = flag(container(statefulset)["command"], "--home")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text(configmap["data"]["config.toml"])

    config = Config.load(tmp_path / "home", env={})

    assert config.logging.level == "info"
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    # The init container copies the mounted file into the home the server runs on.
    script = " ".join(init["command"])
    assert f"{mount['mountPath']}/config.toml" in script
    assert init["command"][-1] == home
    assert init["image"] == container(statefulset)["image"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    on_claim = [(m["name"], m["mountPath"]) for m in init["volumeMounts"]
                if m["name"] == claim["metadata"]["name"]]
    assert on_claim == [(m["name"], m["mountPath"]) for m in container(statefulset)["volumeMounts"]
                        if m["name"] == claim["metadata"]["name"]]


def test_no_service_link_variables_reach_the_litemlops_environment():
    # A Service named litemlops would add LITEMLOPS_SERVICE_HOST, LITEMLOPS_PORT, ...
    # to the pod's environment, the prefix litemlops reads its config from.
    assert one("StatefulSet")["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_the_grace_period_outlasts_the_longest_shutdown_with_a_margin():
    import uvicorn

    from litemlops.server.app import SHUTDOWN_GRACE_SECONDS
    from litemlops.server.main import uvicorn_server

    pod = one("StatefulSet")["spec"]["template"]["spec"]
    pause = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    server: uvicorn.Server = uvicorn_server(lambda *a: None, Config.load("unused", env={}))
    # uvicorn's wait for requests in flight, then the scheduler's wait for tasks.
    longest = server.config.timeout_graceful_shutdown + SHUTDOWN_GRACE_SECONDS

    assert pod["terminationGracePeriodSeconds"] >= pause + longest + 10
    assert pod["terminationGracePeriodSeconds"] > 10 * MEASURED_SHUTDOWN_SECONDS


def test_it_runs_as_the_images_user_and_asks_for_the_memory_it_was_measured_to_use():
    from test_dockerfile import instructions

    pod = one("StatefulSet")["spec"]["template"]["spec"]
    (user,) = [value for name, value in instructions() if name == "USER"]
    uid, _, gid = user.partition(":")
    resources = container()["resources"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    # A read-only image: the home's volume and /tmp (multiprocessing's sockets) are
    # where the server writes.
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"/data", "/tmp"} <= {m["mountPath"] for m in container()["volumeMounts"]}
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["fsGroup"] == int(gid or uid)
    assert mebibytes(resources["requests"]["memory"]) >= 1.2 * MEASURED_PEAK_MIB
    assert mebibytes(resources["limits"]["memory"]) >= mebibytes(resources["requests"]["memory"])


def test_the_init_container_script_makes_the_home_and_copies_the_config(tmp_path):
    import subprocess
    import sys

    (init,) = one("StatefulSet")["spec"]["template"]["spec"]["initContainers"]
    command = list(init["command"])
    assert command[:2] == ["python", "-c"]
    script = command[2].replace("/etc/litemlops", str(tmp_path / "etc"))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "config.toml").write_text("[logging]\nlevel = \"info\"\n")
    home = tmp_path / "data" / "home"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lost+found").mkdir()  # what a fresh ext4 volume holds

    for _ in range(2):  # every start, the volume keeps the home of the last one
        done = subprocess.run(
            [sys.executable, "-c", script, str(home)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr

    assert (home / "config.toml").read_text() == "[logging]\nlevel = \"info\"\n"
    assert home.stat().st_mode & 0o777 == 0o700
