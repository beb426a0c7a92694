"""Delivering notifications to merchants' notify_url, retried until accepted.

A notification is kept in its trade (``trade["notifications"]``) with every attempt. WeChat Pay
counts any 2xx as accepted; Alipay only the plain-text answer ``success``. Each provider module
registers a builder that turns a stored notification into the request to send (WeChat Pay signs
every attempt afresh, with a new timestamp and nonce).

The emulator never reaches the internet: a notification is only sent to a destination on the
allow list (loopback unless ``PAYMENT_EMULATOR_NOTIFY_ALLOW`` adds host names or networks, e.g.
a Compose network). Others are recorded as refused and not sent.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
import time
from typing import Callable
from urllib.parse import urlsplit

import requests

from .store import Store, now, rfc3339

log = logging.getLogger("payment_emulator.notify")

DEFAULT_SCHEDULE = (0.0, 1.0, 3.0, 10.0, 30.0)
DEFAULT_ALLOW = ("localhost", "127.0.0.0/8", "::1/128")
TIMEOUT_S = 5.0


class Destinations:
    """Which notify_url hosts may be reached: names, IP networks."""

    def __init__(self, entries):
        self.names, self.networks = set(), []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry)

    def allowed(self, url: str) -> bool:
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            return False
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self.names
        return any(address in network for network in self.networks)


Builder = Callable[[dict, dict], tuple[dict, bytes]]     # (trade, notification) -> (headers, body)
Acceptor = Callable[[requests.Response], bool]


class Dispatcher:
    def __init__(self, store: Store, schedule=DEFAULT_SCHEDULE, destinations: Destinations | None = None):
        self.store = store
        self.schedule = tuple(schedule) or DEFAULT_SCHEDULE
        self.destinations = destinations or Destinations(DEFAULT_ALLOW)
        self.builders: dict[str, tuple[Builder, Acceptor]] = {}
        self.session = requests.Session()
        self.session.trust_env = False   # no proxies from the environment: local destinations only

    def register(self, provider: str, builder: Builder, acceptor: Acceptor) -> None:
        self.builders[provider] = (builder, acceptor)

    def add(self, trade_key: str, notification: dict, deliver: bool = True) -> dict:
        """Keep a new notification on its trade (the caller holds the store's lock or not) and,
        unless ``deliver`` is false (a notification that got lost), start delivering it."""
        notification.setdefault("attempts", [])
        notification.setdefault("delivered", False)
        notification["pending"] = deliver
        with self.store.lock:
            self.store.trades[trade_key].setdefault("notifications", []).append(notification)
            self.store.save()
        if deliver:
            self.start(trade_key, notification["id"])
        return notification

    def start(self, trade_key: str, notification_id: str) -> None:
        threading.Thread(target=self._deliver, args=(trade_key, notification_id), daemon=True,
                         name=f"notify-{notification_id}").start()

    def resume(self) -> None:
        """Deliveries a stopped emulator left unfinished."""
        with self.store.lock:
            pending = [(key, n["id"]) for key, trade in self.store.trades.items()
                       for n in trade.get("notifications", []) if n.get("pending")]
        for key, notification_id in pending:
            self.start(key, notification_id)

    def _find(self, trade_key: str, notification_id: str):
        trade = self.store.trades.get(trade_key)
        if trade is None:
            return None, None
        for notification in trade.get("notifications", []):
            if notification["id"] == notification_id:
                return trade, notification
        return trade, None

    def _deliver(self, trade_key: str, notification_id: str) -> None:
        with self.store.lock:
            _, notification = self._find(trade_key, notification_id)
            done = len(notification["attempts"]) if notification else 0
        for delay in self.schedule[done:]:
            time.sleep(delay)
            result = self.attempt(trade_key, notification_id)
            if result is None or result["accepted"] or result.get("refused"):
                break
        with self.store.lock:
            _, notification = self._find(trade_key, notification_id)
            if notification is not None:
                notification["pending"] = False
                self.store.save()

    def attempt(self, trade_key: str, notification_id: str) -> dict | None:
        """One delivery of a notification; returns the attempt as recorded."""
        with self.store.lock:
            trade, notification = self._find(trade_key, notification_id)
            if notification is None:
                return None
            trade, notification = dict(trade), dict(notification)
        builder, acceptor = self.builders[trade["provider"]]
        url = notification["url"]
        record = {"at": rfc3339(now()), "url": url, "accepted": False}
        if not self.destinations.allowed(url):
            record.update(refused=True, error="not an allowed local destination: the emulator never "
                                              "reaches the internet (PAYMENT_EMULATOR_NOTIFY_ALLOW)")
        else:
            headers, body = builder(trade, notification)
            try:
                response = self.session.post(url, data=body, headers=headers, timeout=TIMEOUT_S,
                                             allow_redirects=False)
                record.update(status=response.status_code, answer=response.text[:200],
                              accepted=acceptor(response))
            except requests.RequestException as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"[:300]
        log.info("notification %s to %s: %s", notification_id, url,
                 "accepted" if record["accepted"] else record.get("error") or record.get("status"))
        with self.store.lock:
            _, stored = self._find(trade_key, notification_id)
            if stored is not None:
                stored["attempts"].append(record)
                stored["delivered"] = stored["delivered"] or record["accepted"]
                self.store.save()
        return record
