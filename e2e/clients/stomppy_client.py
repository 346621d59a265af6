#!/usr/bin/env python3
"""e2e client: stomp.py 8.x (python3-stomp), STOMP 1.2.

Run by e2e/clients_test.go. Reads its target and names from the environment
(see clients_test.go) and prints one JSON object per step on stdout; the Go
test asserts them. Exits non-zero with {"step":"error",...} on failure.
"""
import json
import os
import queue
import sys

import stomp

ENV = os.environ
HOST, PORT = ENV["STOMP_HOST"], int(ENV["STOMP_PORT"])
LOGIN, PASSCODE, VHOST = ENV["STOMP_LOGIN"], ENV["STOMP_PASSCODE"], ENV["STOMP_VHOST"]
TAG = ENV["E2E_TAG"]
TIMEOUT = 10


def emit(**obj):
    print(json.dumps(obj), flush=True)


class Collector(stomp.ConnectionListener):
    """Turns stomp.py's listener callbacks into a queue of frames."""

    def __init__(self):
        self.frames = queue.Queue()

    def on_message(self, frame):
        self.frames.put(("MESSAGE", frame))

    def on_receipt(self, frame):
        self.frames.put(("RECEIPT", frame))

    def on_error(self, frame):
        self.frames.put(("ERROR", frame))

    def next(self, want):
        try:
            cmd, frame = self.frames.get(timeout=TIMEOUT)
        except queue.Empty:
            raise RuntimeError("no %s within %ss" % (want, TIMEOUT))
        if cmd != want:
            raise RuntimeError("want %s, got %s %s %r" % (want, cmd, frame.headers, frame.body))
        return frame

    def receipt(self, want_id):
        frame = self.next("RECEIPT")
        got = frame.headers.get("receipt-id")
        if got != want_id:
            raise RuntimeError("receipt-id %r, want %r" % (got, want_id))
        return got


def connect():
    conn = stomp.Connection12([(HOST, PORT)], vhost=VHOST, reconnect_attempts_max=1)
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect(LOGIN, PASSCODE, wait=True)
    return conn, listener


def main():
    conn, lis = connect()
    emit(step="connect", version=conn.version)

    # Queue send/subscribe, receipts on SUBSCRIBE and SEND.
    q = "/queue/" + ENV["E2E_QUEUE"]
    conn.subscribe(q, id="q", ack="auto", headers={"receipt": "sub-queue"})
    receipts = [lis.receipt("sub-queue")]
    conn.send(q, "queue " + TAG, headers={"receipt": "send-queue"})
    # The MESSAGE may overtake the SEND's RECEIPT.
    got = [lis.frames.get(timeout=TIMEOUT) for _ in range(2)]
    msg = next(f for c, f in got if c == "MESSAGE")
    receipts += [f.headers["receipt-id"] for c, f in got if c == "RECEIPT"]
    emit(step="queue", receipts=receipts, destination=msg.headers.get("destination"), body=msg.body)
    conn.unsubscribe(id="q", headers={"receipt": "unsub-queue"})
    lis.receipt("unsub-queue")

    # Topic fan-out to two subscribers on their own connections.
    topic = "/topic/" + ENV["E2E_TOPIC_KEY"]
    subs = [connect(), connect()]
    receipts = []
    for i, (c, l) in enumerate(subs):
        c.subscribe(topic, id="t%d" % i, headers={"receipt": "sub-topic-%d" % i})
        receipts.append(l.receipt("sub-topic-%d" % i))
    conn.send(topic, "topic " + TAG, headers={"receipt": "send-topic"})
    receipts.append(lis.receipt("send-topic"))
    bodies, dests = [], []
    for c, l in subs:
        m = l.next("MESSAGE")
        bodies.append(m.body)
        dests.append(m.headers.get("destination"))
        c.disconnect(receipt="bye")
    emit(step="topic", receipts=receipts, bodies=bodies, destinations=dests)

    # /exchange/amq.direct/<key>
    ex = "/exchange/amq.direct/" + ENV["E2E_DIRECT_KEY"]
    conn.subscribe(ex, id="x", headers={"receipt": "sub-exchange"})
    receipts = [lis.receipt("sub-exchange")]
    conn.send(ex, "direct " + TAG, headers={"receipt": "send-exchange"})
    got = [lis.frames.get(timeout=TIMEOUT) for _ in range(2)]
    msg = next(f for c, f in got if c == "MESSAGE")
    receipts += [f.headers["receipt-id"] for c, f in got if c == "RECEIPT"]
    emit(step="exchange", receipts=receipts, destination=msg.headers.get("destination"), body=msg.body)
    conn.unsubscribe(id="x", headers={"receipt": "unsub-exchange"})
    lis.receipt("unsub-exchange")

    # client-individual: NACK the first delivery of ack-1 (requeued), ACK the rest.
    aq = "/queue/" + ENV["E2E_ACK_QUEUE"]
    conn.subscribe(aq, id="a", ack="client-individual", headers={"receipt": "sub-ack"})
    lis.receipt("sub-ack")
    for i in (1, 2):
        conn.send(aq, "ack-%d %s" % (i, TAG), headers={"receipt": "send-ack-%d" % i})
    deliveries, nacked = [], False
    while len(deliveries) < 3:
        cmd, f = lis.frames.get(timeout=TIMEOUT)
        if cmd == "RECEIPT":
            continue
        if cmd != "MESSAGE":
            raise RuntimeError("want MESSAGE, got %s %s %r" % (cmd, f.headers, f.body))
        deliveries.append({"body": f.body, "redelivered": f.headers.get("redelivered", "")})
        if f.body.startswith("ack-1") and not nacked:
            conn.nack(f.headers["ack"])
            nacked = True
        else:
            conn.ack(f.headers["ack"], receipt="acked-%d" % len(deliveries))
    # Wait for the last ACK's receipt: every ACK before it was processed.
    while True:
        cmd, f = lis.frames.get(timeout=TIMEOUT)
        if cmd == "RECEIPT" and f.headers.get("receipt-id") == "acked-3":
            break
        if cmd != "RECEIPT":
            raise RuntimeError("unexpected %s %s %r" % (cmd, f.headers, f.body))
    emit(step="ack", deliveries=deliveries)

    conn.disconnect(receipt="bye")
    emit(step="done")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, then fail the process
        emit(step="error", error="%s: %s" % (type(e).__name__, e))
        sys.exit(1)
