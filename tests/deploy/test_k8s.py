"""deploy/k8s, validated offline: every manifest against the Kubernetes API schemas (strict:
unknown fields are errors), the kustomization rendered by kubectl's built-in kustomize (when
kubectl is installed), and the references between the resources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy import files

#: The oldest Kubernetes the manifests target, and the newest the schemas know.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
KUSTOMIZATION = files.K8S / "kustomization.yaml"


def _validate(doc: dict[str, Any], where: str) -> None:
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} against Kubernetes {version}: {exc.message}")


@pytest.mark.parametrize("path", sorted(p for p in files.K8S.glob("*.yaml")
                                        if p != KUSTOMIZATION), ids=lambda p: p.name)
def test_each_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs, path
    for doc in docs:
        _validate(doc, f"{path.name} {doc['kind']}/{doc['metadata']['name']}")


def test_the_kustomization_lists_existing_files_and_generates_the_config_from_config_dir(
) -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    for resource in kustomization["resources"]:
        assert (files.K8S / resource).is_file(), resource
    generated = kustomization["configMapGenerator"][0]
    assert generated["name"] == "newsmon-config"
    listed = {(files.K8S / f).resolve() for f in generated["files"]}
    shipped = {p.resolve() for p in (files.ROOT / "config").glob("*.yaml")}
    assert listed == shipped, "the ConfigMap must carry every file of config/"
    # newsmon.yaml names the other files relative to itself: they must sit beside it.
    settings = yaml.safe_load((files.ROOT / "config" / "newsmon.yaml").read_text())
    for key in ("feeds", "topics", "alerts"):
        assert (files.ROOT / "config" / settings[key]).resolve() in listed, key
    size = sum(p.stat().st_size for p in listed)
    assert size < 1_000_000, f"config/ is {size} bytes: over a ConfigMap's 1 MiB limit"
    terms = kustomization["configMapGenerator"][1]
    assert terms["name"] == "newsmon-terms"
    listed_terms = {(files.K8S / f).resolve() for f in terms["files"]}
    shipped_terms = {p.resolve() for p in (files.ROOT / "config" / "terms").glob("*.yaml")}
    assert listed_terms == shipped_terms, "the terms ConfigMap must carry every language file"
    size = sum(p.stat().st_size for p in listed_terms)
    assert size < 1_000_000, f"config/terms/ is {size} bytes: over a ConfigMap's 1 MiB limit"


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: the manifests are still "
                    "validated one by one above")
def test_kustomize_renders_a_valid_set_with_the_generated_config_map() -> None:
    assert KUBECTL is not None
    proc = subprocess.run(
        [KUBECTL, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(files.K8S)],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    config_map = next(d for d in docs if d["metadata"]["name"].startswith("newsmon-config-"))
    assert set(config_map["data"]) == {"newsmon.yaml", "feeds.yaml", "topics.yaml",
                                       "alerts.yaml"}
    terms_map = next(d for d in docs if d["metadata"]["name"].startswith("newsmon-terms-"))
    assert set(terms_map["data"]) == {p.name for p in (files.ROOT / "config" / "terms").glob(
        "*.yaml")}
    generated = {"newsmon-config": config_map, "newsmon-terms": terms_map}
    assert "CronJob/newsmon-poll" in kinds and "CronJob/newsmon-pipeline-batch" in kinds
    for doc in docs:
        _validate(doc, f"rendered {doc['kind']}/{doc['metadata']['name']}")
        spec = files.pod_spec(doc)
        for volume in (spec or {}).get("volumes", []):
            if "configMap" in volume:  # references rewritten to the hashed name
                base = volume["configMap"]["name"].rsplit("-", 1)[0]
                assert volume["configMap"]["name"] == generated[base]["metadata"]["name"]


def _secret_keys() -> set[str]:
    secret = yaml.safe_load((files.K8S / "secret.example.yaml").read_text())
    return set(secret["stringData"])


def test_workloads_reference_what_exists_and_run_locked_down() -> None:
    names = {(d["kind"], d["metadata"]["name"]) for _, d in files.k8s_documents()}
    names |= {("ConfigMap", "newsmon-config"), ("ConfigMap", "newsmon-terms")}  # generated
    secret_keys = _secret_keys()
    for where, doc, container in files.k8s_containers():
        spec = files.pod_spec(doc)
        assert spec is not None
        for source in container.get("envFrom", []):
            assert ("ConfigMap", source["configMapRef"]["name"]) in names, where
        for var in container.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "newsmon-secrets" and ref["key"] in secret_keys, where
                assert ref.get("optional") is True, f"{where}: {var['name']} must be optional"
        volumes = {v["name"]: v for v in spec["volumes"]}
        for mount in container["volumeMounts"]:
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names, where
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names, where
            if "secret" in volume:
                assert {i["key"] for i in volume["secret"]["items"]} <= secret_keys, where
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/etc/newsmon", "/var/lib/newsmon", "/tmp"} <= mounts, where
        if "pipeline" in where:  # the rules' terms sit beside topics.yaml
            assert "/etc/newsmon/terms" in mounts, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
        assert "limits" in container["resources"], where


def test_the_poll_cronjob_keeps_its_state_and_never_overlaps() -> None:
    for _where, doc, container in files.k8s_containers():
        if doc["kind"] == "CronJob":
            assert doc["spec"]["schedule"] == "*/5 * * * *"
            assert doc["spec"]["concurrencyPolicy"] == "Forbid"
        if container["args"][:1] == ["poll"]:
            spec = files.pod_spec(doc)
            assert spec is not None
            state = next(v for v in spec["volumes"] if v["name"] == "state")
            assert state["persistentVolumeClaim"]["claimName"] == "newsmon-state"


def test_the_stream_deployment_probes_and_announces_its_metrics_port() -> None:
    doc = yaml.safe_load((files.K8S / "deployment-pipeline-stream.yaml").read_text())
    container = doc["spec"]["template"]["spec"]["containers"][0]
    port = int(container["args"][container["args"].index("--metrics-port") + 1])
    assert container["ports"] == [{"name": "metrics", "containerPort": port}]
    assert doc["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert doc["spec"]["replicas"] == 1 and doc["spec"]["strategy"]["type"] == "Recreate"
