"""Outbound HTTP adapters: the Telegram Bot API and signed generic webhooks. They never sleep or retry."""
