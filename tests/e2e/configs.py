"""The newsmon.yaml the end-to-end tests run the CLI with: the shipped topics and alerts, the
shared Kafka and search server, and the feeds given."""

from __future__ import annotations

from pathlib import Path

import yaml

from newsmon.config import KafkaSettings, SearchSettings

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, kafka: KafkaSettings, search: SearchSettings,
                 feeds: dict[str, object] | None = None) -> Path:
    """Writes ``feeds.yaml`` (no sources unless ``feeds``) and ``newsmon.yaml`` in ``tmp``;
    returns the latter."""
    (tmp / "feeds.yaml").write_text(yaml.safe_dump(feeds or {"sources": []}))
    config = tmp / "newsmon.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp / "state"),
        "feeds": "feeds.yaml",
        "topics": str(ROOT / "config" / "topics.yaml"),
        "alerts": str(ROOT / "config" / "alerts.yaml"),
        "kafka": kafka.model_dump(exclude_none=True),
        "search": {"backend": search.backend, "url": search.url,
                   "index_prefix": search.index_prefix},
    }))
    return config
