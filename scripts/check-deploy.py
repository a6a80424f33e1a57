#!/usr/bin/env python3
"""Offline checks of deploy/: the Kubernetes manifests against the official
schemas (kubernetes-validate, strict: unknown fields are errors), and their
agreement with the gateway configuration they carry.

Run by scripts/test.sh with the Python of the venv it installs
(target/tools/deploy-venv). Exit status 1 on the first kind of failure, with
every problem printed.
"""
import pathlib
import subprocess
import sys
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
# The oldest Kubernetes the manifests support (lifecycle.preStop.sleep is
# 1.30+), and the newest the validator knows.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
# Seconds between the drain's end and Kubernetes' SIGKILL, at the least.
GRACE_MARGIN = 5

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def main():
    check(MANIFESTS, "no manifests in deploy/kubernetes")
    validator = pathlib.Path(sys.executable).parent / "kubernetes-validate"
    for version in KUBERNETES_VERSIONS:
        result = subprocess.run(
            [str(validator), "--strict", "--quiet", "-k", version, *map(str, MANIFESTS)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            problems.append(f"schema validation against Kubernetes {version} failed:\n{result.stdout}{result.stderr}")

    docs = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    for kind in ["Deployment", "ConfigMap", "Service", "PodDisruptionBudget"]:
        check(kind in docs, f"no {kind} in deploy/kubernetes")
    if problems:
        return

    container_config = (ROOT / "deploy" / "crossgate.toml").read_text()
    config_text = docs["ConfigMap"]["data"]["config.toml"]
    check(config_text == container_config, "configmap.yaml's config.toml differs from deploy/crossgate.toml")
    server = tomllib.loads(config_text)["server"]
    listen_port = int(server["listen"].rsplit(":", 1)[1])
    admin_port = int(server["admin"].rsplit(":", 1)[1])
    shutdown_timeout = server.get("shutdown_timeout", 30)

    pod = docs["Deployment"]["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(ports.get("http") == listen_port, f"containerPort http {ports.get('http')} != server.listen port {listen_port}")
    check(ports.get("admin") == admin_port, f"containerPort admin {ports.get('admin')} != server.admin port {admin_port}")
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        http = container.get(probe, {}).get("httpGet", {})
        check(http.get("path") == path and http.get("port") == "admin", f"{probe} must GET {path} on the admin port")
    annotations = pod["metadata"].get("annotations", {})
    check(annotations.get("prometheus.io/scrape") == "true", "pods lack prometheus.io/scrape: \"true\"")
    check(annotations.get("prometheus.io/port") == str(admin_port), "prometheus.io/port is not the admin port")
    check(annotations.get("prometheus.io/path") == "/metrics", "prometheus.io/path is not /metrics")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    check(pre_stop > 0, "no preStop sleep: new connections would still arrive after SIGTERM")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    check(
        grace >= pre_stop + shutdown_timeout + GRACE_MARGIN,
        f"terminationGracePeriodSeconds {grace} < preStop {pre_stop} + shutdown_timeout {shutdown_timeout} + {GRACE_MARGIN}",
    )
    pod_security = spec.get("securityContext", {})
    check(pod_security.get("runAsNonRoot") is True, "runAsNonRoot is not set")
    check(pod_security.get("runAsUser", 0) != 0, "runAsUser must be a non-zero uid (the image's 65532)")
    security = container.get("securityContext", {})
    check(security.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    check(security.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    check("ALL" in security.get("capabilities", {}).get("drop", []), "capabilities are not all dropped")
    resources = container.get("resources", {})
    check("requests" in resources and "memory" in resources.get("limits", {}), "resources need requests and a memory limit")
    mount = next((m for m in container.get("volumeMounts", []) if m["name"] == "config"), {})
    check("subPath" not in mount, "a subPath mount never receives ConfigMap updates")
    check(
        f"{mount.get('mountPath')}/config.toml" in container.get("args", []),
        "the container's --config is not the mounted config.toml",
    )
    service_ports = [p["targetPort"] for p in docs["Service"]["spec"]["ports"]]
    check(service_ports == ["http"], f"the Service must expose only the http port, not {service_ports}")
    selector = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    check(docs["Service"]["spec"]["selector"] == selector, "the Service selects other pods than the Deployment")
    check(docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector, "the PodDisruptionBudget selects other pods")


main()
if problems:
    for problem in problems:
        print(f"deploy/: {problem}", file=sys.stderr)
    sys.exit(1)
print(f"deploy/: {len(MANIFESTS)} manifests valid against Kubernetes {', '.join(KUBERNETES_VERSIONS)}; consistent with deploy/crossgate.toml")
