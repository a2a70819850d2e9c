"""The notifier's rules, free of I/O: every function takes the time it needs as an argument."""

from notifier.domain.alert import PLATFORM_TENANT, Alert, Severity, sanitize_text
from notifier.domain.alertmanager import (
    AlertmanagerAlert,
    AlertmanagerPayload,
    alerts_from_payload,
    parse_alertmanager_payload,
    parse_alertmanager_webhook,
)
from notifier.domain.dedup import DEFAULT_DEDUP_WINDOW, DedupLedger, DedupPolicy, DedupState, DedupVerdict
from notifier.domain.delivery import (
    DeliveryResult,
    Outcome,
    Reason,
    classify_bot_api_answer,
    classify_webhook_answer,
)
from notifier.domain.retry import RetryAction, RetryDecision, RetryPolicy, decide_retry
from notifier.domain.routing import (
    Channel,
    QuietHours,
    QuietMode,
    Route,
    RoutedDelivery,
    RoutingTable,
    parse_chat_id,
    routing_table_from_config,
)
from notifier.domain.storm import DispatchPlan, StormPolicy, plan_dispatch
from notifier.domain.telegram_text import (
    TELEGRAM_TEXT_LIMIT,
    MessagePart,
    RichText,
    Span,
    Style,
    escape_html,
    render_alert,
    render_alert_parts,
    render_digest,
    split_message,
)
from notifier.domain.webhook_payload import webhook_body

__all__ = [
    "DEFAULT_DEDUP_WINDOW",
    "PLATFORM_TENANT",
    "TELEGRAM_TEXT_LIMIT",
    "Alert",
    "AlertmanagerAlert",
    "AlertmanagerPayload",
    "Channel",
    "DedupLedger",
    "DedupPolicy",
    "DedupState",
    "DedupVerdict",
    "DeliveryResult",
    "DispatchPlan",
    "MessagePart",
    "Outcome",
    "QuietHours",
    "QuietMode",
    "Reason",
    "RetryAction",
    "RetryDecision",
    "RetryPolicy",
    "RichText",
    "Route",
    "RoutedDelivery",
    "RoutingTable",
    "Severity",
    "Span",
    "StormPolicy",
    "Style",
    "alerts_from_payload",
    "classify_bot_api_answer",
    "classify_webhook_answer",
    "decide_retry",
    "escape_html",
    "parse_alertmanager_payload",
    "parse_alertmanager_webhook",
    "parse_chat_id",
    "plan_dispatch",
    "render_alert",
    "render_alert_parts",
    "render_digest",
    "routing_table_from_config",
    "sanitize_text",
    "split_message",
    "webhook_body",
]
