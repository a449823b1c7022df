"""The assignment of sources to shards: stable, balanced, pure; polite hosts kept together."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.hosts import HostLimit
from newsmon.connectors.sharding import (
    _ranges,
    assign,
    read_mark,
    seen_mark,
    shard_key,
    shard_of,
)
from newsmon.models import RawItem, SourceRef


def feeds(n: int, *, hosts: dict[str, HostLimit] | None = None,
          per_host: HostLimit | None = None) -> FeedsConfig:
    sources = [{"id": f"feed-{i}", "type": "rss", "url": f"https://site{i % 50}.example/{i}.xml",
                "name": f"Feed {i}", "lang": "en", "country": "GB"} for i in range(n)]
    defaults: dict[str, object] = {"hosts": hosts or {}}
    if per_host is not None:
        defaults["per_host"] = per_host
    return FeedsConfig.model_validate({"defaults": defaults, "sources": sources})


def test_shard_of_is_a_fixed_function_of_the_key() -> None:
    # Pinned values: a change of hash (or Python's salted hash() sneaking in) moves every
    # source of a running group at once.
    assert [shard_of(f"source:feed-{i}", 60) for i in range(5)] == [
        shard_of(f"source:feed-{i}", 60) for i in range(5)]
    assert shard_of("source:feed-0", 60) == 12
    assert shard_of("host:t.me", 60) == 51
    # Another interpreter, with another hash seed, agrees.
    code = ("from newsmon.connectors.sharding import shard_of;"
            "print(shard_of('source:feed-0', 60), shard_of('host:t.me', 60))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "12345"})
    assert out.stdout.split() == ["12", "51"]


def test_assignment_is_balanced() -> None:
    config = feeds(6000)
    shards = assign(config.sources, config.defaults, 60)
    assert len(shards) == 6000
    per_shard = Counter(shards.values())
    assert set(per_shard) == set(range(60))
    # 100 per shard on average; a uniform hash stays within +-40 % at this size.
    assert min(per_shard.values()) >= 60 and max(per_shard.values()) <= 140
    # Three pollers holding 20 shards each carry about a third of the sources each.
    members = Counter(shard % 3 for shard in shards.values())
    assert all(1800 <= n <= 2200 for n in members.values()), members


def test_assignment_is_pure_and_independent_of_order() -> None:
    config = feeds(300)
    first = assign(config.sources, config.defaults, 60)
    again = assign(reversed(config.sources), config.defaults, 60)
    assert first == again
    # Adding sources moves none of the others.
    more = feeds(400)
    grown = assign(more.sources, more.defaults, 60)
    assert {k: grown[k] for k in first} == first


def test_sources_of_a_polite_host_share_a_shard() -> None:
    # site1.example spaces its requests: every feed on it goes to one poller, whose host
    # gate then spaces them as one poller would.
    config = feeds(500, hosts={"site1.example": HostLimit(interval_s=2.0)})
    shards = assign(config.sources, config.defaults, 60)
    polite = {shards[s.id] for s in config.sources if "site1.example" in s.location}
    others = {shards[s.id] for s in config.sources if "site2.example" in s.location}
    assert len(polite) == 1
    assert len(others) > 1  # hosts without a floor are spread by source id
    assert shard_key(config.sources[1], config.defaults) == "host:site1.example"
    assert shard_key(config.sources[2], config.defaults) == "source:feed-2"


def test_a_floor_for_every_host_keys_every_source_by_its_host() -> None:
    config = feeds(200, per_host=HostLimit(interval_s=1.0))
    shards = assign(config.sources, config.defaults, 60)
    by_host: dict[str, set[int]] = {}
    for source in config.sources:
        by_host.setdefault(source.location.split("/")[2], set()).add(shards[source.id])
    assert all(len(found) == 1 for found in by_host.values())
    assert Defaults().per_host.interval_s == 0  # the default keys by source id


def test_seen_marks_round_trip() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    item = RawItem.make(source=SourceRef(id="feed-1", type="rss", name="Feed 1", lang="en",
                                         country="GB"),
                        guid="g1", url="https://site1.example/a", title="A", summary="B",
                        published_at=now, first_seen_at=now)
    key, value = seen_mark(item)
    assert read_mark(key, value) == ("feed-1", item.item_id, (item.revision, now))


def test_shard_lists_in_logs_are_ranges() -> None:
    assert _ranges([5, 0, 1, 2, 7, 9, 10]) == "0-2,5,7,9-10"
    assert _ranges([]) == "none"
