"""deploy/ without docker or a cluster: every file parses, and what the files say about the
gateway (its flags, config keys, port, health path, metric names, shutdown grace) is what
the gateway really has: commands go through the real ``nls`` parser and ``ServerConfig``,
metric names through a real ``GatewayMetrics``."""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from nls_gateway.cli import build_parser
from nls_gateway.config import ServerConfig
from nls_gateway.metrics import GatewayMetrics

from .cluster import DEPLOY, NGINX_TEMPLATE, ROOT, TEMPLATE_VARIABLES

TOML = DEPLOY / "gateway.toml"
K8S = DEPLOY / "kubernetes"
DOCS = ROOT / "docs" / "deploy.md"
CONTAINER_TOML = "/etc/nls/gateway.toml"


DEPLOY_ENV = {"ALIYUN_AK_ID": "akid", "ALIYUN_AK_SECRET": "aksecret"}
"""What every consumer (unit, compose, Deployment) puts in the environment."""


def _config(argv: list[str]) -> ServerConfig:
    """Parse an ``nls`` command line with the real parser; build its ServerConfig with the
    container/host config path pointing at deploy/gateway.toml and the deployment's env."""
    assert argv[0] == "serve", argv
    argv = [str(TOML) if a == CONTAINER_TOML else a for a in argv]
    args = build_parser().parse_args(argv)  # an unknown flag exits (SystemExit 2)
    return ServerConfig.from_args(args, env=DEPLOY_ENV)


def _yaml(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def _k8s(kind: str) -> dict[str, Any]:
    found = [d for p in sorted(K8S.glob("*.yaml")) for d in _yaml(p) if d["kind"] == kind]
    assert len(found) == 1, (kind, found)
    return found[0]


def _exported_names() -> set[str]:
    """Every sample name GET /metrics can show (counters end in _total, histograms have
    _bucket/_sum/_count)."""
    names = set()
    for family in GatewayMetrics().registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
        }.get(family.type, ("",))
        names.update(family.name + s for s in suffixes)
    return names


def _grace() -> float:
    return _config(["serve", "--config", str(TOML)]).shutdown_grace


def _sleep_seconds(command: list[str]) -> float:
    assert command[0] == "sleep", command
    return float(command[1])


# ----------------------------------------------------------------------------- config


def test_gateway_toml_is_a_valid_config_for_a_public_replica() -> None:
    config = _config(["serve", "--config", str(TOML), "--token-secret", "x" * 32])
    assert (config.host, config.port) == ("0.0.0.0", 8765)
    assert config.max_live_streams == 2 and config.shutdown_grace == 20.0
    assert config.credentials.access_keys == {"akid": "aksecret"}
    assert not config.dev_mode
    # The AccessKeys are the credentials a public address needs: without them, no start.
    args = build_parser().parse_args(["serve", "--config", str(TOML)])
    with pytest.raises(ValueError, match="without credentials"):
        ServerConfig.from_args(args, env={})


def test_configmap_carries_gateway_toml_unchanged() -> None:
    configmap = _k8s("ConfigMap")
    assert configmap["data"]["gateway.toml"] == TOML.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- each consumer


def test_systemd_unit_runs_a_valid_serve_command() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(DEPLOY / "systemd" / "nls-gateway.service", encoding="utf-8")
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"].replace("${NLS_TOKEN_SECRET}", "s" * 32))
    assert argv[0].endswith("/nls")
    config = _config(argv[1:])
    assert config.token_secret == b"s" * 32
    assert service["User"] not in ("root", "0")
    assert float(service["TimeoutStopSec"]) > config.shutdown_grace
    # ${NLS_TOKEN_SECRET} comes from the EnvironmentFile the recipe above the unit writes.
    recipe = (DEPLOY / "systemd" / "nls-gateway.service").read_text()
    assert "NLS_TOKEN_SECRET=%s\\n" in recipe and f"> {service['EnvironmentFile']}" in recipe
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_base_user_healthcheck_and_command() -> None:
    steps = _dockerfile()
    froms = [arg for word, arg in steps if word == "FROM"]
    assert froms[-1] == "python:3.11-slim"  # the image that ships
    users = [arg for word, arg in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    (expose,) = [arg for word, arg in steps if word == "EXPOSE"]
    assert int(expose) == 8765
    (health,) = [arg for word, arg in steps if word == "HEALTHCHECK"]
    assert "http://127.0.0.1:8765/healthz" in health
    (entry,) = [json.loads(arg) for word, arg in steps if word == "ENTRYPOINT"]
    (cmd,) = [json.loads(arg) for word, arg in steps if word == "CMD"]
    assert entry == ["nls"]
    _config(cmd)
    # The build steps call real subcommands, and copy files that exist.
    runs = " ".join(arg for word, arg in steps if word == "RUN")
    for sub in ("models pull", "models verify"):
        assert f"nls {sub}" in runs
        build_parser().parse_args(sub.split())
    for word, arg in steps:
        if word == "COPY" and not arg.startswith("--"):
            *sources, _ = arg.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    assert 'pip install ".[gateway]"' in runs


def test_dockerignore_keeps_what_the_image_copies() -> None:
    rules = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    kept = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    for word, arg in _dockerfile():
        if word == "COPY" and not arg.startswith("--"):
            *sources, _ = arg.split()
            assert set(sources) <= kept, sources


def test_compose_two_replicas_behind_nginx_from_the_template() -> None:
    (compose,) = _yaml(DEPLOY / "compose.yaml")
    services = compose["services"]
    gateways = [name for name, s in services.items() if s.get("image") == "opennls-gateway"]
    assert len(gateways) == 2
    for name in gateways:
        service = services[name]
        argv = [
            re.sub(r"\$\{NLS_TOKEN_SECRET[^}]*\}", "s" * 32, str(a)) for a in service["command"]
        ]
        config = _config(argv)
        assert service["expose"] == [str(config.port)]
        assert "./gateway.toml:" + CONTAINER_TOML + ":ro" in service["volumes"]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).exists()
        assert float(service["stop_grace_period"].rstrip("s")) > config.shutdown_grace
        assert set(service["environment"]) == {"ALIYUN_AK_ID", "ALIYUN_AK_SECRET"}
    nginx = services["nginx"]
    env = nginx["environment"]
    assert set(env) == set(TEMPLATE_VARIABLES)
    assert sorted(env[v] for v in ("NLS_REPLICA_1", "NLS_REPLICA_2")) == [
        f"{g}:8765" for g in sorted(gateways)
    ]
    (mount,) = nginx["volumes"]
    source, target, _ = mount.split(":")
    assert (DEPLOY / source).resolve() == NGINX_TEMPLATE
    # The nginx image renders /etc/nginx/templates/X.template into /etc/nginx/conf.d/X.
    assert target == "/etc/nginx/templates/" + NGINX_TEMPLATE.name
    assert nginx["ports"] == [f"{env['NLS_LISTEN']}:{env['NLS_LISTEN']}"]
    assert set(nginx["depends_on"]) == set(gateways)
    assert all(d["condition"] == "service_healthy" for d in nginx["depends_on"].values())
    prometheus = services["prometheus"]
    (mount,) = prometheus["volumes"]
    assert (DEPLOY / mount.split(":")[0]).resolve() == DEPLOY / "prometheus" / "prometheus.yml"


def test_nginx_template_variables_and_settings() -> None:
    text = NGINX_TEMPLATE.read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(TEMPLATE_VARIABLES)
    body = "\n".join(line.split("#")[0] for line in text.splitlines())
    for directive in (
        "least_conn;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_next_upstream error timeout http_503;",
        "proxy_buffering off;",
    ):
        assert directive in body, directive
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", body).group(1))  # type: ignore[union-attr]
    defaults = ServerConfig()
    assert read_timeout > max(defaults.idle_timeout, defaults.engine_timeout)


def test_docs_show_the_nginx_template_as_it_is() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```nginx\n(.*?)```", docs, re.S)
    assert NGINX_TEMPLATE.read_text() in blocks, "docs/deploy.md must show the template"
    for path in re.findall(r"`(deploy/[\w./-]+)`", docs):
        assert (ROOT / path).exists(), path


def test_every_nls_serve_line_in_docs_and_deploy_parses() -> None:
    texts = [DOCS.read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in DEPLOY.rglob("*") if p.is_file()]
    checked = 0
    for text in texts:
        text = re.sub(r"\\\n\s*", " ", text)
        for match in re.finditer(r"\bnls serve((?: +--?[\w-]+(?:[ =](?!--)[^\s`]+)?)*)", text):
            flags = re.findall(r"(--[\w-]+)", match.group(1))
            options = _serve_options()
            unknown = [f for f in flags if f not in options]
            assert not unknown, (match.group(0), unknown)
            checked += 1
    assert checked >= 5


def _serve_options() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    serve = sub.choices["serve"]  # type: ignore[attr-defined]
    return {o for action in serve._actions for o in action.option_strings}


# ------------------------------------------------------------------------- kubernetes


def test_kubernetes_deployment_probes_drain_and_command() -> None:
    deployment = _k8s("Deployment")
    pod = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    (container,) = pod["spec"]["containers"]
    argv = [a.replace("$(NLS_TOKEN_SECRET)", "s" * 32) for a in container["args"]]
    config = _config(argv)
    env = {e["name"]: e for e in container["env"]}
    assert {"NLS_TOKEN_SECRET", "ALIYUN_AK_ID", "ALIYUN_AK_SECRET"} <= set(env)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == config.port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in ("http", config.port), probe
    # A drain (SIGTERM → up to shutdown_grace) must not look like a dead process.
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > config.shutdown_grace
    pre_stop = _sleep_seconds(container["lifecycle"]["preStop"]["exec"]["command"])
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace > pre_stop + config.shutdown_grace
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (mount,) = container["volumeMounts"]
    assert CONTAINER_TOML == mount["mountPath"] + "/gateway.toml"
    (volume,) = pod["spec"]["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["configMap"]["name"] == _k8s("ConfigMap")["metadata"]["name"]
    secret = _k8s("Secret")
    for var in env.values():
        ref = var["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_kubernetes_service_and_autoscaler() -> None:
    deployment, service, hpa = _k8s("Deployment"), _k8s("Service"), _k8s("HorizontalPodAutoscaler")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] in _exported_names()
    assert metric["pods"]["metric"]["name"] == "nls_stream_load"
    # The target is below one replica's budget, or it would scale only once streams are refused.
    value = metric["pods"]["target"]["averageValue"]
    average = float(value[:-1]) / 1000 if value.endswith("m") else float(value)
    assert 0 < average < _config(["serve", "--config", str(TOML)]).max_live_streams
    assert hpa["spec"]["minReplicas"] >= 2


# ------------------------------------------------------------------------- monitoring


def test_prometheus_scrapes_the_metrics_path_of_the_replicas() -> None:
    (config,) = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job in jobs.values():
        assert job["metrics_path"] == "/metrics"
    (static,) = jobs["nls-gateway"]["static_configs"]
    (compose,) = _yaml(DEPLOY / "compose.yaml")
    gateways = {n for n, s in compose["services"].items() if s.get("image") == "opennls-gateway"}
    assert {t.rsplit(":", 1)[0] for t in static["targets"]} == gateways
    assert {t.rsplit(":", 1)[1] for t in static["targets"]} == {"8765"}
    keep = jobs["nls-gateway-kubernetes"]["relabel_configs"]
    assert any(r.get("regex") == "nls-gateway" and r["action"] == "keep" for r in keep)


def test_grafana_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "nls-gateway.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    exported = _exported_names()
    used = {name for e in exprs for name in re.findall(r"\bnls_\w+", e)}
    assert used <= exported, sorted(used - exported)
    # The series docs/deploy.md tells operators to watch are on the dashboard.
    for name in ("nls_stream_load", "nls_decode_wait_seconds_bucket", "nls_admissions_total"):
        assert name in used
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_metric_names_in_docs_and_deploy_are_exported() -> None:
    exported = _exported_names()
    bases = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in exported}
    texts = [DOCS.read_text(encoding="utf-8")]
    texts += [p.read_text() for p in (DEPLOY / "kubernetes").glob("*.yaml")]
    names = {n for t in texts for n in re.findall(r"\bnls_[a-z_]+[a-z]", t)}
    names -= {"nls_gateway"}  # the Python package and the nginx upstream, not metrics
    assert names, "no metric named"
    unknown = sorted(n for n in names if n not in exported and n not in bases)
    assert not unknown, unknown


@pytest.mark.parametrize("path", sorted(p.name for p in K8S.glob("*.yaml")))
def test_kubernetes_documents_have_kind_and_name(path: str) -> None:
    for doc in _yaml(K8S / path):
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"] == "nls-gateway"
