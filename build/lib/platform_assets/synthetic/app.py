"""`platform-simulate-app`: a deterministic OLTP workload on the app schema, at a target rate.

The same seed on the same starting database gives the same operations and values (ids, emails,
amounts, plans, event names and properties); timestamps are wall-clock so lag can be measured.
Runs can follow one another on one database: ids continue from what is there.
Every operation is one row change (insert, update or delete). The record (JSON) states what
was written: per operation and per table, live rows added, and money figures, so tests can
compute the figures they expect.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from platform_assets.cdc.source import migrate

# Operation -> weight. Product events dominate, as in a real app; money moves are rarer.
MIX: dict[str, int] = {
    "page_view": 40,
    "feature_use": 15,
    "signup": 8,
    "user_update": 5,
    "order": 10,
    "refund": 2,
    "subscription_start": 5,
    "plan_change": 5,
    "cancellation": 3,
    "event_delete": 7,
}
PAGES = ["/", "/pricing", "/docs", "/signup", "/blog", "/dashboard", "/settings"]
FEATURES = ["export", "share", "invite", "search", "alerts", "api_key"]
PLANS = {"starter": 1900, "team": 4900, "business": 19900}
COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA"]


@dataclass
class Record:
    seed: int
    target_rate: float
    operations: Counter = field(default_factory=Counter)
    inserted: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    deleted: Counter = field(default_factory=Counter)
    paid_cents: int = 0
    refunded_cents: int = 0
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return sum(self.operations.values())

    def live_rows_added(self) -> dict[str, int]:
        tables = set(self.inserted) | set(self.deleted)
        return {t: self.inserted[t] - self.deleted[t] for t in sorted(tables)}

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "target_rate": self.target_rate,
            "changes": self.changes,
            "seconds": round(self.seconds, 3),
            "achieved_rate": round(self.changes / self.seconds, 1) if self.seconds else 0.0,
            "operations": dict(sorted(self.operations.items())),
            "inserted": dict(sorted(self.inserted.items())),
            "updated": dict(sorted(self.updated.items())),
            "deleted": dict(sorted(self.deleted.items())),
            "live_rows_added": self.live_rows_added(),
            "paid_cents": self.paid_cents,
            "refunded_cents": self.refunded_cents,
        }


class Workload:
    """Generates operations from a seeded RNG and applies them in batches."""

    def __init__(self, conn: psycopg.Connection, seed: int, rate: float) -> None:
        self.conn = conn
        self.record = Record(seed=seed, target_rate=rate)
        self.ops = list(MIX)
        self.weights = list(MIX.values())
        row = conn.execute(
            "SELECT (SELECT coalesce(max(user_id), 0) FROM users), (SELECT coalesce(max(order_id), 0) FROM orders), "
            "(SELECT coalesce(max(subscription_id), 0) FROM subscriptions)"
        ).fetchone()
        assert row is not None
        self.next_user, self.next_order, self.next_sub = row[0] + 1, row[1] + 1, row[2] + 1
        # The starting ids join the seed: a rerun on the same database draws new event ids
        # instead of colliding with the ones it wrote before.
        self.rng = random.Random(f"{seed}:{self.next_user}:{self.next_order}:{self.next_sub}")
        # Only rows this run created are touched again: reruns stay deterministic.
        self.users: list[int] = []
        self.paid_orders: list[tuple[int, int]] = []
        self.active_subs: list[int] = []
        self.events: list[uuid.UUID] = []

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _user(self) -> int | None:
        return self.rng.choice(self.users) if self.users else None

    def step(self, cur: psycopg.Cursor) -> None:
        op = self.rng.choices(self.ops, self.weights)[0]
        if not self._apply(cur, op):
            self._apply(cur, "signup")  # nothing to update yet: grow the user base instead
            op = "signup"
        self.record.operations[op] += 1

    def _event(self, cur: psycopg.Cursor, user: int | None, name: str, props: dict[str, Any]) -> None:
        event_id = self._uuid()
        cur.execute(
            "INSERT INTO events (event_id, user_id, occurred_at, event_name, properties) "
            "VALUES (%s, %s, now(), %s, %s)",
            (event_id, user, name, Jsonb(props)),
        )
        self.events.append(event_id)
        self.record.inserted["events"] += 1

    def _apply(self, cur: psycopg.Cursor, op: str) -> bool:
        rng, rec = self.rng, self.record
        if op == "signup":
            uid = self.next_user
            self.next_user += 1
            cur.execute(
                "INSERT INTO users (user_id, email, name, country) VALUES (%s, %s, %s, %s)",
                (uid, f"user{uid}@example.com", f"User {uid}", rng.choice(COUNTRIES)),
            )
            self.users.append(uid)
            rec.inserted["users"] += 1
        elif op == "page_view":
            self._event(cur, self._user(), "page_view", {"path": rng.choice(PAGES), "ms": rng.randint(50, 3000)})
        elif op == "feature_use":
            if not self.users:
                return False
            self._event(cur, self._user(), "feature_used", {"feature": rng.choice(FEATURES)})
        elif op == "user_update":
            uid = self._user()
            if uid is None:
                return False
            cur.execute(
                "UPDATE users SET country = %s, updated_at = now() WHERE user_id = %s",
                (rng.choice(COUNTRIES), uid),
            )
            rec.updated["users"] += 1
        elif op == "order":
            uid = self._user()
            if uid is None:
                return False
            oid, amount = self.next_order, rng.randint(500, 50_000)
            self.next_order += 1
            cur.execute(
                "INSERT INTO orders (order_id, user_id, amount_cents, status) VALUES (%s, %s, %s, 'paid')",
                (oid, uid, amount),
            )
            self.paid_orders.append((oid, amount))
            rec.inserted["orders"] += 1
            rec.paid_cents += amount
        elif op == "refund":
            if not self.paid_orders:
                return False
            oid, amount = self.paid_orders.pop(rng.randrange(len(self.paid_orders)))
            cur.execute("UPDATE orders SET status = 'refunded', updated_at = now() WHERE order_id = %s", (oid,))
            rec.updated["orders"] += 1
            rec.refunded_cents += amount
        elif op == "subscription_start":
            uid = self._user()
            if uid is None:
                return False
            sid, plan = self.next_sub, rng.choice(list(PLANS))
            self.next_sub += 1
            cur.execute(
                "INSERT INTO subscriptions (subscription_id, user_id, plan, mrr_cents, status) "
                "VALUES (%s, %s, %s, %s, 'active')",
                (sid, uid, plan, PLANS[plan]),
            )
            self.active_subs.append(sid)
            rec.inserted["subscriptions"] += 1
        elif op == "plan_change":
            if not self.active_subs:
                return False
            plan = rng.choice(list(PLANS))
            cur.execute(
                "UPDATE subscriptions SET plan = %s, mrr_cents = %s, updated_at = now() WHERE subscription_id = %s",
                (plan, PLANS[plan], rng.choice(self.active_subs)),
            )
            rec.updated["subscriptions"] += 1
        elif op == "cancellation":
            if not self.active_subs:
                return False
            sid = self.active_subs.pop(rng.randrange(len(self.active_subs)))
            cur.execute(
                "UPDATE subscriptions SET status = 'cancelled', cancelled_at = now(), updated_at = now() "
                "WHERE subscription_id = %s",
                (sid,),
            )
            rec.updated["subscriptions"] += 1
        elif op == "event_delete":
            if not self.events:
                return False
            event_id = self.events.pop(rng.randrange(len(self.events)))
            cur.execute("DELETE FROM events WHERE event_id = %s", (event_id,))
            rec.deleted["events"] += 1
        return True

    def run(self, duration: float, rate: float, tick: float = 0.05, max_changes: int | None = None) -> Record:
        """Paces to ``rate`` changes/s: each tick commits the operations due so far."""
        started = time.monotonic()
        done = 0
        limit = max_changes if max_changes is not None else int(rate * duration)
        with self.conn.cursor() as cur:
            while done < limit:
                due = min(limit, int((time.monotonic() - started) * rate) + 1)
                if due > done:
                    with self.conn.transaction():
                        for _ in range(due - done):
                            self.step(cur)
                    done = due
                else:
                    time.sleep(tick)
        self.record.seconds = time.monotonic() - started
        return self.record


def connect_from_env() -> psycopg.Connection:
    return psycopg.connect(
        host=os.environ["POSTGRES_HOST"],
        port=int(os.environ["POSTGRES_PORT"]),
        user=os.environ["POSTGRES_USER"],
        password=os.environ["POSTGRES_PASSWORD"],
        dbname=os.environ["POSTGRES_DB"],
        connect_timeout=5,
        autocommit=True,
        application_name="platform-simulate-app",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platform-simulate-app", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0, help="target changes per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--record", type=Path, help="write the record of what was written here (JSON)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")

    from platform_assets import environment

    environment.prepare()  # local: settings from the embedded stack
    with connect_from_env() as conn:
        migrate(conn)
        record = Workload(conn, args.seed, args.rate).run(args.duration, args.rate)
    out = json.dumps(record.to_json(), indent=2)
    if args.record:
        args.record.write_text(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
