"""Processes: the broker and its middleware, settings, the CLI, the webhook receiver and the ops dashboard."""
