"""campaign-gateway service: MailWizz and PowerMTA bindings, campaigns, delivery statistics."""
