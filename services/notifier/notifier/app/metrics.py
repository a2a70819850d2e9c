"""The notifier's own Prometheus metrics (on the service's /metrics), counted by the process that delivers.

emailengine_notifier_alerts_total{source,verdict}            alerts received: accepted or suppressed
emailengine_notifier_messages_total{channel,outcome}         messages (alerts or storm digests): delivered,
                                                             retry, failed
emailengine_notifier_delivery_failures_total{channel,reason} deliveries given up for good, per reason
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry | None):
        registry = registry or CollectorRegistry()
        self.messages = Counter(
            "emailengine_notifier_messages_total",
            "Messages (single alerts or storm digests) by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "emailengine_notifier_delivery_failures_total",
            "Deliveries given up for good, by channel and reason",
            ["channel", "reason"],
            registry=registry,
        )
        self.alerts = Counter(
            "emailengine_notifier_alerts_total",
            "Alerts received, by source and verdict",
            ["source", "verdict"],
            registry=registry,
        )
