"""The files that run a generated service as many replicas: compose.yaml, deploy/.

``specs/qa.yaml`` is generated once (the session's example project, about 2 s),
every YAML file in it is parsed, and the wiring that the README's "Many
replicas" describes is checked: the compose services and their health checks,
HAProxy's backend, the Kubernetes probes, selectors, ports and grace periods,
and the kustomization. ``tests/system/test_haproxy_config.py`` runs HAProxy on
the shipped configuration; ``tests/system/test_deploy_names.py`` checks the
names made from a long service name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from dspy_forge.spec.settings import declared

K8S = "deploy/k8s"
# What Kubernetes accepts: as a Service's name an RFC 1035 label (63 characters at most),
# as a label's value up to 63 characters, as the name of anything else an RFC 1123
# subdomain (253 at most).
NAME_RULES = {
    "Service name": (re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"), 63),
    "label": (re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"), 63),
    "name": (re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"), 253),
}
# uvicorn's timeout_graceful_shutdown is SHUTDOWN_GRACE + 5 (__main__.py): the longest a
# replica takes from SIGTERM to exit.
UVICORN_EXTRA = 5


@pytest.fixture(scope="module")
def project(example_project: Callable[[str], Path]) -> Path:
    return example_project("qa")


def yaml_files(project: Path) -> list[Path]:
    """The project's own YAML files (not its answers or its package)."""
    return sorted(
        path
        for path in project.rglob("*.y*ml")
        if path.name != ".copier-answers.yml" and "src" not in path.relative_to(project).parts
    )


def documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc is not None]


@pytest.fixture(scope="module")
def compose(project: Path) -> dict[str, Any]:
    (doc,) = documents(project / "compose.yaml")
    return doc


@pytest.fixture(scope="module")
def k8s(project: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Every Kubernetes object of deploy/k8s by (kind, name)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((project / K8S).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} twice"
            found[key] = doc
    return found


def one(k8s: dict[tuple[str, str], dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    (doc,) = [
        doc
        for (found, _), doc in k8s.items()
        if found == kind and doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return doc


def seconds(duration: str) -> float:
    """A compose duration such as ``20s`` or ``1m30s``, in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def default_shutdown_grace() -> float:
    (setting,) = [s for s in declared() if s.name == "shutdown_grace"]
    return float(setting.default)


# --- Every file --------------------------------------------------------------------------


def test_the_deployment_files_are_generated(project: Path) -> None:
    expected = {
        "compose.yaml",
        "deploy/haproxy.cfg",
        *(
            f"{K8S}/{name}.yaml"
            for name in ("configmap", "deployment", "kustomization", "pdb", "redis", "service")
        ),
    }
    deploy = (p for p in (project / "deploy").rglob("*") if p.is_file())
    found = {p.relative_to(project).as_posix() for p in deploy}
    assert (project / "compose.yaml").is_file()
    assert found | {"compose.yaml"} == expected


def test_every_yaml_file_parses_and_ends_with_one_newline(project: Path) -> None:
    paths = yaml_files(project)
    assert {p.name for p in paths} >= {"compose.yaml", "deployment.yaml", "redis.yaml"}
    for path in paths:
        text = path.read_text("utf-8")
        assert documents(path), path
        assert text.endswith("\n") and not text.endswith("\n\n"), path
        assert "{{" not in text and "{%" not in text, f"{path}: Jinja left in it"
        assert "\t" not in text and not re.search(r" +$", text, re.MULTILINE), path


# --- compose.yaml ------------------------------------------------------------------------


def test_compose_runs_redis_three_replicas_and_a_balancer(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "app", "lb"}
    assert services["redis"]["image"].startswith("redis:")
    assert services["lb"]["image"].startswith("haproxy:")
    app = services["app"]
    assert app["build"] == "."
    assert app["deploy"]["replicas"] == 3
    assert "ports" not in app, "replicas are reached through the balancer only"


def test_compose_points_the_replicas_at_its_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    environment = services["app"]["environment"]
    url = urlsplit(environment["REDIS_URL"])
    assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379)
    assert environment["HOST"] == "0.0.0.0"
    assert services["app"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_compose_reads_an_optional_env_file_that_cannot_move_the_replicas(
    compose: dict[str, Any],
) -> None:
    app = compose["services"]["app"]
    assert app["env_file"] == [{"path": ".env", "required": False}]
    # compose's environment wins over env_file: what the wiring needs is pinned there.
    assert {"REDIS_URL", "HOST", "PORT", "SHUTDOWN_GRACE"} <= set(app["environment"])


def test_compose_checks_readiness_with_the_images_python(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]
    test = app["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "<healthcheck>", "exec")
    url = urlsplit(test[4])
    port = int(app["environment"]["PORT"])
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", port, "/readyz")


def test_compose_waits_longer_than_a_replica_drains(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]
    grace = float(app["environment"]["SHUTDOWN_GRACE"])
    assert grace == default_shutdown_grace()
    assert seconds(app["stop_grace_period"]) > grace + UVICORN_EXTRA


def test_compose_ships_the_balancer_config_and_publishes_its_port(
    project: Path, compose: dict[str, Any]
) -> None:
    lb = compose["services"]["lb"]
    (volume,) = lb["volumes"]
    source, target, mode = volume.split(":")
    assert (project / source).is_file() and source == "./deploy/haproxy.cfg"
    assert (target, mode) == ("/usr/local/etc/haproxy/haproxy.cfg", "ro")
    (published,) = lb["ports"]
    assert published.rsplit(":", 2)[-2:] == ["8000", "8000"]


# --- deploy/haproxy.cfg ------------------------------------------------------------------


def test_haproxy_balances_the_ready_replicas_that_docker_dns_names(
    project: Path, compose: dict[str, Any]
) -> None:
    config = (project / "deploy" / "haproxy.cfg").read_text("utf-8")
    lines = [line.split("#")[0].strip() for line in config.splitlines()]
    lines = [line for line in lines if line]
    assert "nameserver docker 127.0.0.11:53" in lines
    assert "balance roundrobin" in lines
    assert "http-check send meth GET uri /readyz" in lines
    assert "http-check expect status 200" in lines
    (template,) = [line.split() for line in lines if line.startswith("server-template ")]
    host, port = template[3].split(":")
    assert host == "app" and port == compose["services"]["app"]["environment"]["PORT"]
    assert int(template[2]) >= 3
    for word in ("check", "init-addr", "resolvers"):
        assert word in template
    assert template[template.index("resolvers") + 1] == "docker"
    (bind,) = [line.split() for line in lines if line.startswith("bind ")]
    (published,) = compose["services"]["lb"]["ports"]
    assert bind[1] == ":" + published.rsplit(":", 1)[1]
    for timeout in ("client", "server", "tunnel"):
        (value,) = [line.split()[2] for line in lines if line.startswith(f"timeout {timeout} ")]
        assert seconds(value) >= 600, f"timeout {timeout} {value}: too short for a stream"
    assert not [line for line in lines if line.startswith(("compression", "filter"))]
    # compose.yaml's replicas trust X-Forwarded-For: only HAProxy's own may reach them.
    assert compose["services"]["app"]["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    assert "option forwardfor" in lines
    assert "http-request del-header X-Forwarded-For" in lines


# --- deploy/k8s --------------------------------------------------------------------------


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    return found


def container_port(deployment: dict[str, Any], port: int | str) -> int:
    """A probe's or a Service's port (a number or a port's name) as the container's number."""
    ports = container(deployment)["ports"]
    by_name = {p["name"]: p["containerPort"] for p in ports}
    number = by_name[port] if isinstance(port, str) else port
    assert number in by_name.values()
    return number


def env(deployment: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry for entry in container(deployment)["env"]}


def test_the_deployment_runs_three_replicas_probed_on_the_container_port(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = one(k8s, "Deployment", "api")
    assert deployment["spec"]["replicas"] == 3
    app = container(deployment)
    assert container_port(deployment, "http") == int(env(deployment)["PORT"]["value"]) == 8000
    probes = {kind: app[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert app["startupProbe"]["httpGet"]["path"] in {"/healthz", "/readyz"}
    for probe in (*probes.values(), app["startupProbe"]["httpGet"]):
        assert container_port(deployment, probe["port"]) == 8000
    startup = app["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30
    assert env(deployment)["HOST"]["value"] == "0.0.0.0"


def test_the_grace_period_covers_the_pre_stop_sleep_and_the_drain(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = one(k8s, "Deployment", "api")
    grace = float(env(deployment)["SHUTDOWN_GRACE"]["value"])
    assert grace == default_shutdown_grace()
    command = container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert pre_stop > 0
    period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert period > pre_stop + grace + UVICORN_EXTRA


def test_the_pods_run_as_the_images_user_on_a_read_only_root(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = one(k8s, "Deployment", "api")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # useradd --uid 10001 in the Dockerfile
    app = container(deployment)
    assert app["securityContext"]["readOnlyRootFilesystem"] is True
    assert app["securityContext"]["allowPrivilegeEscalation"] is False
    assert app["securityContext"]["capabilities"]["drop"] == ["ALL"]
    (mount,) = app["volumeMounts"]
    (volume,) = pod["volumes"]
    assert mount == {"name": volume["name"], "mountPath": "/tmp"} and "emptyDir" in volume
    resources = app["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_keys_come_from_an_optional_secret_and_redis_from_the_config_map(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = one(k8s, "Deployment", "api")
    variables = env(deployment)
    secrets = set()
    for name in ("LM_API_KEY", "API_KEYS"):
        ref = variables[name]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == name and ref["optional"] is True
        secrets.add(ref["name"])
    assert len(secrets) == 1
    (source,) = container(deployment)["envFrom"]
    config_map = k8s[("ConfigMap", source["configMapRef"]["name"])]
    redis = one(k8s, "Service", "redis")
    url = urlsplit(config_map["data"]["REDIS_URL"])
    assert url.scheme == "redis" and url.hostname == redis["metadata"]["name"]
    assert url.port == redis["spec"]["ports"][0]["port"]


def test_the_service_and_the_budget_select_the_replicas_only(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = one(k8s, "Deployment", "api")
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    redis_pods = one(k8s, "Deployment", "redis")["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], pods)
    service = one(k8s, "Service", "api")
    budget = one(k8s, "PodDisruptionBudget", "api")
    for selector in (service["spec"]["selector"], budget["spec"]["selector"]["matchLabels"]):
        assert selects(selector, pods) and not selects(selector, redis_pods)
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80 and container_port(deployment, port["targetPort"]) == 8000
    spec = budget["spec"]
    assert spec.get("maxUnavailable") == 1 or spec.get("minAvailable") == 2


def test_redis_is_one_replica_behind_its_own_service(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = one(k8s, "Deployment", "redis")
    assert deployment["spec"]["replicas"] == 1
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(k8s, "Service", "redis")
    assert selects(service["spec"]["selector"], pods)
    (port,) = service["spec"]["ports"]
    assert container_port(deployment, port["targetPort"]) == port["port"] == 6379


def test_the_kustomization_lists_every_file_and_names_the_image(
    project: Path, k8s: dict[tuple[str, str], dict[str, Any]]
) -> None:
    folder = project / K8S
    (kustomization,) = documents(folder / "kustomization.yaml")
    files = {p.name for p in folder.iterdir()} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert len(kustomization["resources"]) == len(files)
    image, tag = container(one(k8s, "Deployment", "api"))["image"].rsplit(":", 1)
    (entry,) = kustomization["images"]
    assert (entry["name"], entry["newName"], entry["newTag"]) == (image, image, tag)


def kubernetes_names(k8s: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, str]]:
    """Every (what, name) that Kubernetes holds to its label rules, for a test to check."""
    names = []
    for (kind, name), doc in k8s.items():
        names.append((f"{kind} name", name))
        names += [(f"{kind} label", value) for value in doc["metadata"]["labels"].values()]
        if kind == "Deployment":
            for entry in container(doc).get("env", []):
                if ref := entry.get("valueFrom", {}).get("secretKeyRef"):
                    names.append(("Secret name", ref["name"]))
    return names


def check_kubernetes_names(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    for what, name in kubernetes_names(k8s):
        rule = what if what == "Service name" else what.rsplit(" ", 1)[1]
        pattern, longest = NAME_RULES[rule]
        assert pattern.match(name) and len(name) <= longest, f"{what} {name!r}"


def test_every_name_is_one_kubernetes_accepts(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    check_kubernetes_names(k8s)


# --- README.md ---------------------------------------------------------------------------


def test_the_readme_states_the_files_numbers_and_names(
    project: Path, compose: dict[str, Any], k8s: dict[tuple[str, str], dict[str, Any]]
) -> None:
    readme = (project / "README.md").read_text("utf-8")
    section = readme.split("\n## Many replicas\n", 1)[1].split("\n## ", 1)[0]
    deployment = one(k8s, "Deployment", "api")
    period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert f"`terminationGracePeriodSeconds: {period}`" in section
    stop = seconds(compose["services"]["app"]["stop_grace_period"])
    assert f"`stop_grace_period` is {stop:g} seconds" in section
    grace = env(deployment)["SHUTDOWN_GRACE"]["value"]
    assert f"`SHUTDOWN_GRACE` ({grace})" in section
    pre_stop = container(deployment)["lifecycle"]["preStop"]["exec"]["command"][1]
    assert f"sleeps {pre_stop} seconds in `preStop`" in section
    (secret,) = {name for what, name in kubernetes_names(k8s) if what == "Secret name"}
    assert f"kubectl create secret generic {secret} " in section
    assert "docker compose up --build --scale app=" in section
