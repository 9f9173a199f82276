"""ServiceMonitor/PrometheusRule appear only where Prometheus Operator is, and alert on the
metrics padlock exports; the Grafana dashboard queries the same metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
from prometheus_client import metrics as prometheus_metrics

from padlock import metrics
from tests.unit.chart import render

MONITORING = "monitoring.coreos.com/v1"


def test_monitoring_objects_are_absent_without_the_prometheus_operator_api(
    default_objects: list[dict[str, Any]],
) -> None:
    assert render.find(default_objects, "ServiceMonitor") == []
    assert render.find(default_objects, "PrometheusRule") == []


def test_monitoring_objects_follow_the_cluster_capability() -> None:
    objects = render.template(api_versions=[MONITORING])
    assert render.one(objects, "ServiceMonitor")
    assert render.one(objects, "PrometheusRule")


def test_monitoring_can_be_forced_on_and_off() -> None:
    forced = render.template(
        sets=["monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true"]
    )
    assert render.one(forced, "ServiceMonitor") and render.one(forced, "PrometheusRule")
    off = render.template(
        api_versions=[MONITORING],
        sets=["monitoring.serviceMonitor.enabled=false", "monitoring.prometheusRule.enabled=false"],
    )
    assert render.find(off, "ServiceMonitor") == [] and render.find(off, "PrometheusRule") == []


def _alerts(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rule = render.one(objects, "PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


def test_alerts_use_the_exported_metrics() -> None:
    alerts = _alerts(render.template(api_versions=[MONITORING]))
    expiring = alerts["PadlockCertificateExpiringSoon"]["expr"]
    assert "padlock_certificate_expiration_timestamp_seconds - time() < 1209600" in expiring
    not_ready = alerts["PadlockCertificateNotReady"]
    assert 'padlock_certificate_ready_status{condition="True"} == 0' in not_ready["expr"]
    assert not_ready["for"] == "15m"
    assert (
        "padlock_crl_next_update_timestamp_seconds - time() < 3600"
        in (alerts["PadlockCRLNextUpdateSoon"]["expr"])
    )
    assert 'up{job="padlock-ocsp"} == 0' in alerts["PadlockOCSPResponderDown"]["expr"]
    ca_down = alerts["PadlockCADown"]["expr"]
    assert 'up{job="padlock-metrics", endpoint="ca-metrics"} == 0' in ca_down
    assert 'absent(up{job="padlock-metrics", endpoint="ca-metrics"})' in ca_down
    hsm = alerts["PadlockCAHSMDown"]["expr"]
    assert 'padlock_ca_hsm_up{job="padlock-metrics", endpoint="ca-metrics"} == 0' in hsm


def test_alert_thresholds_follow_values() -> None:
    alerts = _alerts(
        render.template(
            api_versions=[MONITORING],
            sets=[
                "monitoring.prometheusRule.expiringWithinDays=30",
                "monitoring.prometheusRule.crlNextUpdateWithin=2d",
            ],
        )
    )
    assert "< 2592000" in alerts["PadlockCertificateExpiringSoon"]["expr"]
    assert "< 172800" in alerts["PadlockCRLNextUpdateSoon"]["expr"]


def test_alert_annotations_keep_prometheus_templates_for_prometheus() -> None:
    alerts = _alerts(render.template(api_versions=[MONITORING]))
    summary = alerts["PadlockCertificateExpiringSoon"]["annotations"]["summary"]
    assert "{{ $labels.namespace }}/{{ $labels.name }}" in summary


def _scraped_ports(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Service name -> the port names of it the ServiceMonitor scrapes (job = Service name)."""
    monitor = render.one(objects, "ServiceMonitor")
    endpoints = {e["port"] for e in monitor["spec"]["endpoints"]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    return {
        svc["metadata"]["name"]: {p["name"] for p in svc["spec"]["ports"]} & endpoints
        for svc in render.find(objects, "Service")
        if selector.items() <= svc["metadata"]["labels"].items()
    }


def test_service_monitor_scrapes_the_operator_ca_and_responder() -> None:
    objects = render.template(api_versions=[MONITORING])
    assert _scraped_ports(objects) == {
        "padlock-metrics": {"metrics", "ca-metrics"},
        "padlock-ocsp": {"http"},
    }
    # Every endpoint finds a Service port: none is scraped nowhere.
    monitor = render.one(objects, "ServiceMonitor")
    scraped = set().union(*_scraped_ports(objects).values())
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == scraped


def test_ca_metrics_service_port_reaches_the_ca_containers_listener() -> None:
    objects = render.template(api_versions=[MONITORING], sets=["ca.metricsPort=9999"])
    svc = render.one(objects, "Service", "padlock-metrics")
    (port,) = [p for p in svc["spec"]["ports"] if p["name"] == "ca-metrics"]
    assert port["port"] == 9999
    pod = render.one(objects, "Deployment", "padlock")["spec"]["template"]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    ca = render.container(pod["spec"], "ca")
    assert {p["name"]: p["containerPort"] for p in ca["ports"]} == {port["targetPort"]: 9999}


# Labels Prometheus Operator sets on every target; a scraped label of the same name is renamed
# exported_<name> unless the endpoint honours the scraped labels (Prometheus honor_labels).
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "service", "pod", "container", "endpoint"}
)
# Which ServiceMonitor endpoint serves which metric family, by name prefix.
PORTS_BY_PREFIX = {
    "padlock_ca_": {"ca-metrics"},
    "padlock_crl_": {"ca-metrics"},
    "padlock_ocsp_": {"ca-metrics", "http"},
    "padlock_certificate_": {"metrics"},
    "padlock_issuer_": {"metrics"},
    "padlock_issuance_": {"metrics"},
    "padlock_workload_": {"metrics"},
}


def _label_names() -> dict[str, tuple[str, ...]]:
    """Family name (a Counter's without _total) -> label names, of every padlock.metrics metric."""
    return {
        m._name: tuple(m._labelnames)
        for m in vars(metrics).values()
        if isinstance(m, prometheus_metrics.MetricWrapperBase)
    }


def test_endpoints_keep_padlock_labels_that_share_a_target_labels_name() -> None:
    """padlock_certificate_*{namespace} is the Certificate's namespace and
    padlock_ca_requests_total{endpoint} the CA API route: the alerts and the dashboard group by
    them, so the endpoints serving them must not rename them exported_*."""
    monitor = render.one(render.template(api_versions=[MONITORING]), "ServiceMonitor")
    honored = {e["port"] for e in monitor["spec"]["endpoints"] if e.get("honorLabels")}
    clashing = {
        name: set(labels) & TARGET_LABELS
        for name, labels in _label_names().items()
        if set(labels) & TARGET_LABELS
    }
    assert "padlock_ca_requests" in clashing  # a Counter's family name has no _total
    assert "padlock_certificate_expiration_timestamp_seconds" in clashing
    for name in _label_names():
        ports = [p for prefix, p in PORTS_BY_PREFIX.items() if name.startswith(prefix)]
        assert ports, f"{name}: add its endpoint to PORTS_BY_PREFIX"
        if name in clashing:
            assert ports[0] <= honored, f"{name}{sorted(clashing[name])} served unhonoured"


def test_dashboard_is_valid_json_and_queries_padlock_metrics(
    default_objects: list[dict[str, Any]],
) -> None:
    cm = render.one(default_objects, "ConfigMap", "padlock-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["padlock.json"])
    titles = {p["title"]: p for p in dashboard["panels"]}
    exprs = {t: " ".join(x["expr"] for x in p["targets"]) for t, p in titles.items()}
    assert "padlock_certificate_expiration_timestamp_seconds" in exprs["Certificates by days left"]
    assert "padlock_issuance_duration_seconds_count" in exprs["Issuance rate"]
    assert "padlock_issuance_duration_seconds_bucket" in exprs["Issuance latency"]
    assert "padlock_ocsp_requests_total" in exprs["OCSP requests by status"]
    assert "padlock_ca_requests_total" in exprs["Revocations"]
    assert "padlock_ca_signatures_total" in exprs["CA signatures and lint refusals"]
    assert "padlock_ca_lint_failures_total" in exprs["CA signatures and lint refusals"]
    assert "padlock_ocsp_signatures_total" in exprs["OCSP signatures by reason"]
    assert 'padlock_ca_hsm_up{endpoint="ca-metrics"}' in exprs["CA HSM session"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def _exported_names() -> set[str]:
    """Every sample name padlock's metrics registry can export."""
    names: set[str] = set()
    for family in metrics.REGISTRY.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_count", "_sum"],
            "summary": ["_count", "_sum"],
        }.get(family.type, [""])
        names.update(family.name + s for s in suffixes)
    return names


def _queries(objects: list[dict[str, Any]]) -> list[str]:
    rules = [r["expr"] for r in _alerts(objects).values()]
    cm = render.one(objects, "ConfigMap", "padlock-dashboard")
    panels = json.loads(cm["data"]["padlock.json"])["panels"]
    return rules + [t["expr"] for p in panels for t in p["targets"]]


def test_every_query_is_valid_promql_over_metrics_padlock_exports() -> None:
    objects = render.template(api_versions=[MONITORING])
    exported = _exported_names()
    queries = _queries(objects)
    assert len(queries) >= 12
    for query in queries:
        promql_parser.parse(query)  # raises ValueError with the position of a syntax error
        for name in re.findall(r"\bpadlock_[a-z_]+\b", query):
            assert name in exported, f"{name} (in {query!r}) is not a padlock metric"


def _selectors(query: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(query), visit)
    return found


def test_job_and_endpoint_matchers_name_what_the_service_monitor_scrapes() -> None:
    """`up{job=..., endpoint=...}` and the CA-only HSM gauge select real targets: the job is a
    scraped Service, the endpoint one of its scraped ports (a renamed port would otherwise
    leave an alert that can never fire)."""
    objects = render.template(api_versions=[MONITORING])
    scraped = _scraped_ports(objects)
    all_ports = set().union(*scraped.values())
    checked = 0
    for query in _queries(objects):
        for selector in _selectors(query):
            equal = {
                m.name: m.value
                for m in selector.matchers.matchers
                if m.op == promql_parser.MatchOp.Equal and m.name in ("job", "endpoint")
            }
            if "job" in equal:
                assert equal["job"] in scraped, f"{query!r}: no scraped Service {equal['job']}"
            if "endpoint" in equal:
                ports = scraped[equal["job"]] if "job" in equal else all_ports
                assert equal["endpoint"] in ports, f"{query!r}: no scraped port {equal['endpoint']}"
            checked += bool(equal)
    assert checked >= 6
