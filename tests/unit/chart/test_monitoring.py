"""ServiceMonitor/PrometheusRule appear only where Prometheus Operator is, and alert on the
metrics padlock exports; the Grafana dashboard queries the same metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser

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


def test_service_monitor_scrapes_the_metrics_and_responder_services() -> None:
    objects = render.template(api_versions=[MONITORING])
    monitor = render.one(objects, "ServiceMonitor")
    ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    for service in ("padlock-metrics", "padlock-ocsp"):
        svc = render.one(objects, "Service", service)
        assert selector.items() <= svc["metadata"]["labels"].items()
        assert {p["name"] for p in svc["spec"]["ports"]} & ports


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
    assert "Revocations" in titles
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
