"""Notifier: tells the right people, once, on Telegram or a webhook, that something needs a human.

`notifier.domain` holds the rules (routing, dedup, storm grouping, rendering, retry, answer
classification, Alertmanager parsing) as pure code; `notifier.adapters` holds the outbound HTTP clients.
"""
