#!/usr/bin/env python3
"""Checks the files in deploy/ the way a cluster and Docker would read them.

- Kubernetes manifests are validated against the Kubernetes 1.31 OpenAPI schemas
  (kubernetes-validate, strict: unknown fields are errors), and the kustomization must
  list every manifest but the example Secret.
- The Deployment must probe /readyz for readiness and /healthz for liveness, run as a
  non-root user, and mount the Secret it passes to `deflect serve --config`.
- docker-compose.yml is validated against the Compose specification's JSON schema (the
  copy shipped in the docker-compose 1.29.2 package), and its Redis must keep an AOF.
- The Dockerfile must be multi-stage, run as a non-root user, carry CA certificates and
  copy config/ and index_schema/ into the image.
- Every DEFLECT_<SECTION>__<KEY> variable set in the ConfigMap or the compose file must
  name a key of config/base.toml, so a renamed setting cannot silently stop applying.

Run by tests/run-all.sh with the packages it names installed; prints one line a check
and exits non-zero on the first file that fails.
"""

import json
import pathlib
import subprocess
import sys
import tomllib
import zipfile

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"


class DeployCheckFailed(Exception):
    pass


def require(condition, message):
    if not condition:
        raise DeployCheckFailed(message)


def load_documents(path):
    with path.open() as file:
        return [document for document in yaml.safe_load_all(file) if document]


def check_kubernetes_schemas():
    manifests = sorted(
        path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml"
    )
    require(manifests, "no Kubernetes manifests in deploy/kubernetes")
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet",
         *map(str, manifests)],
        capture_output=True,
        text=True,
    )
    require(result.returncode == 0,
            "kubernetes-validate rejected the manifests:\n" + result.stdout + result.stderr)
    kinds = {document["kind"] for path in manifests for document in load_documents(path)}
    for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret"]:
        require(kind in kinds, f"deploy/kubernetes has no {kind}")
    print(f"ok: {len(manifests)} Kubernetes manifests valid against Kubernetes 1.31 (strict)")


def check_kustomization():
    kustomization = load_documents(KUBERNETES / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    expected = {
        path.name for path in KUBERNETES.glob("*.yaml")
        if path.name not in ("kustomization.yaml", "secret.example.yaml")
    }
    require(listed == expected,
            f"kustomization.yaml lists {sorted(listed)}, the folder has {sorted(expected)}")
    print("ok: kustomization.yaml lists every manifest")


def deflect_container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(container for container in containers if container["name"] == "deflect")


def check_deployment():
    deployment = load_documents(KUBERNETES / "deployment.yaml")[0]
    pod = deployment["spec"]["template"]["spec"]
    container = deflect_container(deployment)
    require(container["readinessProbe"]["httpGet"]["path"] == "/readyz",
            "the readiness probe must call /readyz")
    require(container["livenessProbe"]["httpGet"]["path"] == "/healthz",
            "the liveness probe must call /healthz")
    require(pod["securityContext"].get("runAsNonRoot") is True,
            "the pod must run as a non-root user")
    config_argument = container["args"][container["args"].index("--config") + 1]
    secret_mounts = {
        mount["mountPath"] for mount in container["volumeMounts"]
        if any(volume["name"] == mount["name"] and "secret" in volume for volume in pod["volumes"])
    }
    require(any(config_argument.startswith(path + "/") for path in secret_mounts),
            f"--config {config_argument} is not inside a mounted Secret")
    service = load_documents(KUBERNETES / "service.yaml")[0]
    require(service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"],
            "the Service does not select the Deployment's pods")
    hpa = load_documents(KUBERNETES / "hpa.yaml")[0]
    require(hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"],
            "the HorizontalPodAutoscaler does not scale the Deployment")
    print("ok: Deployment probes, user, Secret mount, Service selector and autoscaler target")


def compose_schema():
    """Returns the Compose specification schema from the docker-compose 1.29.2 wheel."""
    cache = ROOT / "target" / "deploy-check"
    wheels = sorted(cache.glob("docker_compose-1.29.2-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--dest", str(cache), "docker-compose==1.29.2"],
            check=True,
        )
        wheels = sorted(cache.glob("docker_compose-1.29.2-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        return json.loads(wheel.read("compose/config/compose_spec.json"))


def check_compose(base_settings):
    compose = load_documents(DEPLOY / "docker-compose.yml")[0]
    try:
        jsonschema.validate(compose, compose_schema())
    except jsonschema.ValidationError as error:
        raise DeployCheckFailed(f"docker-compose.yml breaks the Compose specification: {error.message}")
    redis_command = " ".join(compose["services"]["redis"]["command"])
    require("--appendonly yes" in redis_command, "the compose Redis must keep an AOF")
    environment = compose["services"]["deflect"]["environment"]
    check_setting_names(environment, base_settings, "docker-compose.yml")
    print("ok: docker-compose.yml valid against the Compose specification, Redis with AOF")


def check_dockerfile():
    # One instruction a line, with continuation lines joined.
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    stages = [line for line in instructions if line.upper().startswith("FROM ")]
    require(len(stages) >= 2, "the Dockerfile must be multi-stage")
    final_stage = instructions[instructions.index(stages[-1]):]
    users = [line.split()[1] for line in final_stage if line.upper().startswith("USER ")]
    require(users and users[-1] not in ("root", "0"), "the runtime image must not run as root")
    runs = " ".join(line for line in final_stage if line.upper().startswith("RUN "))
    require("ca-certificates" in runs,
            "the runtime image needs ca-certificates for deflect's outbound TLS calls")
    copies = " ".join(line for line in final_stage if line.upper().startswith("COPY "))
    for folder in ["config", "index_schema"]:
        require(f"COPY {folder} " in copies, f"the runtime image must copy {folder}/")
    print(f"ok: Dockerfile has {len(stages)} stages, runs as {users[-1]}, copies config and index_schema")


def check_setting_names(variables, base_settings, source):
    for name in variables:
        if not name.startswith("DEFLECT_") or "__" not in name:
            continue
        path = name.removeprefix("DEFLECT_").lower().split("__")
        node = base_settings
        for part in path:
            require(isinstance(node, dict) and part in node,
                    f"{source} sets {name}, which is no key of config/base.toml")
            node = node[part]


def check_configmap_settings(base_settings):
    configmap = load_documents(KUBERNETES / "configmap.yaml")[0]
    check_setting_names(configmap["data"], base_settings, "configmap.yaml")
    print("ok: every DEFLECT_ setting in the ConfigMap names a key of config/base.toml")


def main():
    base_settings = tomllib.loads((ROOT / "config" / "base.toml").read_text())
    try:
        check_kubernetes_schemas()
        check_kustomization()
        check_deployment()
        check_configmap_settings(base_settings)
        check_compose(base_settings)
        check_dockerfile()
    except DeployCheckFailed as failure:
        print(f"deploy check failed: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
