"""Kubernetes names made from a service name that Kubernetes would refuse as it is.

A spec's ``service.name`` may hold '_' and run to 64 characters; Kubernetes
names are DNS labels of at most 63, and the Redis Service adds ``-redis``. The
manifests turn '_' into '-' and cut the name to 57 characters without a
trailing '-': this spec's name is cut right after a separator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec
from tests.conftest import SPECS
from tests.golden.test_deploy_files import check_kubernetes_names, kubernetes_names

NAME = "abcde_" * 9 + "ab_cdefgh"  # 63 characters; the 57th is a '_'


def test_a_long_name_with_underscores_gives_names_kubernetes_accepts(tmp_path: Path) -> None:
    assert len(NAME) == 63 and NAME[56] == "_"
    spec = tmp_path / "long.yaml"
    spec.write_text((SPECS / "qa.yaml").read_text().replace("name: qa-service", f"name: {NAME}"))
    project = generate(load_spec(spec), tmp_path / "project")
    k8s: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((project / "deploy" / "k8s").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in yaml.safe_load_all(path.read_text()):
                k8s[(doc["kind"], doc["metadata"]["name"])] = doc
    check_kubernetes_names(k8s)
    base = NAME.replace("_", "-")[:56]
    assert ("Deployment", base) in k8s and ("Service", f"{base}-redis") in k8s
    (secret,) = {name for what, name in kubernetes_names(k8s) if what == "Secret name"}
    assert f"kubectl create secret generic {secret} " in (project / "README.md").read_text()
    # Image and compose project names take '_' as it is.
    (compose,) = yaml.safe_load_all((project / "compose.yaml").read_text())
    assert compose["name"] == NAME and compose["services"]["app"]["image"] == f"{NAME}:latest"
