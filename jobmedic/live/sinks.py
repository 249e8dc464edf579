"""Where alerts go: `stdout`, `jsonl:PATH`, `webhook:URL` (generic JSON with a Slack-style
`text`), `slack:URL` (Slack's payload only) and `email:ADDR` (SMTP settings given).

Network sinks send from one background thread with retries and backoff, so a slow or broken
endpoint never blocks polling. The thread never touches the store: results come back through
a queue and the watcher records them (`drain`). Every notice was written to alert_deliveries
as pending before it was queued, so a failure (or a stop) never loses an alert.
"""
from __future__ import annotations

import json
import queue
import smtplib
import sys
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TextIO

from jobmedic.knowledge.errors import JobmedicError
from jobmedic.live.alerting import Notice


class SinkError(JobmedicError):
    kind = "invalid_sink"
    http_status = 400
    user_fault = True


def line_of(n: Notice) -> str:
    d = n.to_dict()
    head = {"fire": "ALERT", "repeat": "ALERT (again)", "resolve": "RESOLVED"}[n.event]
    parts = [f"[{head}] #{d['id']} {d['severity']} {d['rule']} {d['subject']}: {d['text']}"]
    if d["evidence"] and n.event != "resolve":
        parts.append(f"  evidence: {d['evidence']}")
    if d["fix"] and n.event != "resolve":
        parts.append(f"  fix: {d['fix']}")
    return "\n".join(parts)


class StdoutSink:
    name = "stdout"
    background = False

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    def send(self, n: Notice) -> None:
        out = self.out or sys.stdout
        out.write(line_of(n) + "\n")
        out.flush()


class JsonlSink:
    background = False

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.name = f"jsonl:{path}"

    def send(self, n: Notice) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"sent_at": round(time.time(), 3), **n.to_dict()}) + "\n")


class WebhookSink:
    background = True

    def __init__(self, url: str, slack_only: bool = False, timeout_s: float = 5.0) -> None:
        self.url, self.slack_only, self.timeout_s = url, slack_only, timeout_s
        self.name = f"{'slack' if slack_only else 'webhook'}:{url}"

    def payload(self, n: Notice) -> dict[str, Any]:
        text = line_of(n)
        return {"text": text} if self.slack_only else {"text": text, "alert": n.to_dict()}

    def send(self, n: Notice) -> None:
        import httpx

        r = httpx.post(self.url, json=self.payload(n), timeout=self.timeout_s)
        if r.status_code >= 300:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")


class EmailSink:
    background = True

    def __init__(self, addr: str, smtp: dict[str, Any]) -> None:
        self.addr, self.smtp = addr, smtp
        self.name = f"email:{addr}"

    def send(self, n: Notice) -> None:
        d = n.to_dict()
        msg = EmailMessage()
        msg["Subject"] = (f"[jobmedic] {'RESOLVED' if n.event == 'resolve' else 'ALERT'} "
                          f"{d['rule']} {d['subject']}")
        msg["From"] = self.smtp.get("sender") or "jobmedic@localhost"
        msg["To"] = self.addr
        msg.set_content(line_of(n) + "\n\n" + json.dumps(d, indent=2))
        host, port = self.smtp.get("host") or "localhost", int(self.smtp.get("port") or 25)
        with smtplib.SMTP(host, port, timeout=float(self.smtp.get("timeout_s") or 10)) as s:
            if self.smtp.get("starttls"):
                s.starttls()
            if self.smtp.get("user"):
                s.login(self.smtp["user"], self.smtp.get("password") or "")
            s.send_message(msg)


def parse_sink(spec: str, smtp: dict[str, Any] | None = None) -> Any:
    """A sink from its command-line spelling."""
    kind, _, arg = spec.partition(":")
    if spec == "stdout":
        return StdoutSink()
    if kind == "jsonl" and arg:
        return JsonlSink(arg)
    if kind in ("webhook", "slack") and arg.startswith(("http://", "https://")):
        return WebhookSink(arg, slack_only=kind == "slack")
    if kind == "email" and "@" in arg:
        return EmailSink(arg, smtp or {})
    raise SinkError(f"unknown sink {spec!r}",
                    hint="use stdout, jsonl:PATH, webhook:URL, slack:URL or email:ADDR")


class Dispatcher:
    """Sends notices to every sink; records each delivery (pending -> sent / failed)."""

    def __init__(self, store: Any, sinks: list[Any], retries: int = 4, backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store, self.sinks = store, sinks
        self.retries, self.backoff_s, self.sleep = retries, backoff_s, sleep
        self.jobs: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.sent = self.failed = 0
        self._thread: threading.Thread | None = None

    def dispatch(self, notices: list[Notice]) -> None:
        for n in notices:
            for sink in self.sinks:
                did = self.store.live.add_delivery(n.alert["id"], sink.name, n.event)
                if sink.background:
                    self._start()
                    self.jobs.put((did, sink, n))
                else:
                    self.results.put(self._attempt(did, sink, n, retries=0))
        self.drain()

    def _attempt(self, did: int, sink: Any, n: Notice, retries: int) -> tuple[int, bool, int, str]:
        err = ""
        for i in range(retries + 1):
            try:
                sink.send(n)
                return did, True, i + 1, ""
            except Exception as exc:  # noqa: BLE001 - any sink fault is recorded, never raised
                err = f"{type(exc).__name__}: {exc}"[:500]
                if i < retries:
                    self.sleep(self.backoff_s * 2 ** i)
        return did, False, retries + 1, err

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="jobmedic-sinks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self.jobs.get()
            if item is None:
                self.jobs.task_done()
                return
            self.results.put(self._attempt(*item, retries=self.retries))
            self.jobs.task_done()

    def drain(self) -> int:
        """Record finished deliveries (called from the watcher's thread)."""
        n = 0
        while True:
            try:
                did, ok, attempts, err = self.results.get_nowait()
            except queue.Empty:
                return n
            self.store.live.finish_delivery(did, ok, attempts, err or None)
            self.sent += ok
            self.failed += not ok
            n += 1

    def close(self, timeout_s: float = 30.0) -> None:
        """Let queued deliveries finish (bounded), then record them."""
        if self._thread is not None and self._thread.is_alive():
            self.jobs.put(None)
            self._thread.join(timeout_s)
        self.drain()
