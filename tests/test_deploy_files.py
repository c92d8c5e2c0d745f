"""Consistency of the deployment files in export/: Compose, Kubernetes, models.config.

Each file names the same things (the model, its base path, the config path, the ports,
the REST timeout, the server version); a change in one that is not made in the others
would give a server that starts and serves nothing. These tests parse every file and
compare.
"""

import glob
import os
import re
from importlib import metadata

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

EXPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export")
MODEL = "tfstyle"
GRPC, REST = 8500, 8501
CONFIG_PATH = "/models/models.config"


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def parse_config(text):
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


@pytest.fixture(scope="module")
def models_config():
    with open(os.path.join(EXPORT, "models.config"), encoding="utf-8") as f:
        return parse_config(f.read())


@pytest.fixture(scope="module")
def compose():
    (doc,) = load_yaml(os.path.join(EXPORT, "compose.yaml"))
    return doc["services"][MODEL]


@pytest.fixture(scope="module")
def k8s():
    docs = {}
    for path in sorted(glob.glob(os.path.join(EXPORT, "k8s", "*.yaml"))):
        for doc in load_yaml(path):
            docs[doc["kind"]] = doc
    return docs


@pytest.fixture(scope="module")
def container(k8s):
    (c,) = k8s["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def flags(args):
    """['--a=1', '--b'] -> {'a': '1', 'b': ''}."""
    parsed = {}
    for arg in args:
        match = re.fullmatch(r"--([\w-]+)(?:=(.*))?", arg)
        assert match, f"not a --flag: {arg}"
        parsed[match.group(1)] = match.group(2) or ""
    return parsed


def image_version(image):
    match = re.fullmatch(r"tensorflow/serving:(\d+)\.(\d+)\.(\d+)(-gpu)?", image)
    assert match, f"not a pinned tensorflow/serving image: {image}"
    return tuple(int(g) for g in match.groups()[:3]), bool(match.group(4))


def test_models_config(models_config):
    (config,) = models_config.model_config_list.config
    assert config.name == MODEL
    assert config.base_path == f"/models/{MODEL}"
    assert config.model_platform == "tensorflow"
    assert config.model_version_policy.latest.num_versions == 1


def test_configmap_holds_models_config(k8s, models_config):
    configmap = k8s["ConfigMap"]
    assert parse_config(configmap["data"]["models.config"]) == models_config


def test_server_version_is_pinned_and_not_older_than_tensorflow(compose, container):
    compose_version, compose_gpu = image_version(compose["image"])
    k8s_version, k8s_gpu = image_version(container["image"])
    assert compose_version == k8s_version
    assert not compose_gpu and k8s_gpu  # CPU locally, GPU in the cluster
    # An exporter newer than the server writes ops the server does not know.
    tf_version = tuple(int(p) for p in metadata.version("tensorflow").split(".")[:2])
    assert compose_version[:2] >= tf_version
    with open(os.path.join(EXPORT, "compose.yaml"), encoding="utf-8") as f:
        assert f"# image: tensorflow/serving:{'.'.join(map(str, compose_version))}-gpu" in f.read()


def test_flags_agree(compose, container, models_config):
    compose_flags, k8s_flags = flags(compose["command"]), flags(container["args"])
    assert compose_flags == k8s_flags
    assert compose_flags["model_config_file"] == CONFIG_PATH
    assert int(compose_flags["rest_api_timeout_in_ms"]) >= 60_000
    assert compose_flags["enable_model_warmup"] == "true"


def test_compose_ports_and_mounts(compose, models_config):
    assert sorted(compose["ports"]) == [f"{GRPC}:{GRPC}", f"{REST}:{REST}"]
    mounts = {v["target"]: v for v in compose["volumes"]}
    base_path = models_config.model_config_list.config[0].base_path
    assert set(mounts) == {base_path, CONFIG_PATH}
    assert all(v["type"] == "bind" and v["read_only"] for v in mounts.values())
    # `tfstyle-export --model_dir=models/tfstyle`, run from the repository root.
    assert os.path.normpath(os.path.join(EXPORT, mounts[base_path]["source"])) == \
        os.path.join(os.path.dirname(EXPORT), "models", MODEL)
    assert os.path.normpath(os.path.join(EXPORT, mounts[CONFIG_PATH]["source"])) == \
        os.path.join(EXPORT, "models.config")


def test_deployment(k8s, container, models_config):
    deployment = k8s["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": GRPC, "http": REST}
    resources = container["resources"]
    assert int(resources["requests"]["nvidia.com/gpu"]) >= 1
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": f"/v1/models/{MODEL}", "port": REST}

    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    base_path = models_config.model_config_list.config[0].base_path
    assert mounts["models"]["mountPath"] == base_path and mounts["models"]["readOnly"]
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == \
        k8s["PersistentVolumeClaim"]["metadata"]["name"]
    assert mounts["config"]["mountPath"] == CONFIG_PATH
    assert mounts["config"]["subPath"] == "models.config"
    assert volumes["config"]["configMap"]["name"] == k8s["ConfigMap"]["metadata"]["name"]


def test_service(k8s):
    service = k8s["Service"]
    pod_labels = k8s["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"grpc": (GRPC, GRPC), "http": (REST, REST)}


def test_server_gets_the_librarys_cpu_allocator(compose, container):
    """Both deployments ask for the allocator ``import tfstyle`` picks (tfstyle.allocator)."""
    from tfstyle import allocator
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    assert compose["environment"][allocator.ENV] == env[allocator.ENV] == "1"
