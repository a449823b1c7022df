"""Pollers for RSS/Atom feeds and public Telegram channels, and the Kafka publisher."""
