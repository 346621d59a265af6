#!/usr/bin/env python3
"""e2e client: stomper 0.4 (python3-stomper), STOMP 1.1.

stomper only builds and parses frames, so this script drives the socket
itself. Run by e2e/clients_test.go; prints one JSON object per step.
"""
import json
import os
import socket
import sys
import time

import stomper
from stomper.stompbuffer import StompBuffer

ENV = os.environ
HOST, PORT = ENV["STOMP_HOST"], int(ENV["STOMP_PORT"])
LOGIN, PASSCODE, VHOST = ENV["STOMP_LOGIN"], ENV["STOMP_PASSCODE"], ENV["STOMP_VHOST"]
TAG = ENV["E2E_TAG"]
TIMEOUT = 10


def emit(**obj):
    print(json.dumps(obj), flush=True)


def frame(cmd, headers, body=""):
    """A stomper.Frame, for frames whose stomper helper takes no receipt."""
    f = stomper.Frame()
    f.cmd = cmd
    f.headers = headers
    f.body = body
    return f.pack()


class Conn:
    def __init__(self):
        self.sock = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
        self.buf = StompBuffer()
        # stomper.connect sends accept-version:1.1 and heart-beat:0,0.
        self.write(stomper.connect(LOGIN, PASSCODE, VHOST))
        connected = self.next("CONNECTED")
        self.version = connected["headers"].get("version", "")

    def write(self, data):
        self.sock.sendall(data.encode("utf-8"))

    def read(self):
        deadline = time.time() + TIMEOUT
        while True:
            msg = self.buf.getOneMessage()
            if msg is not None:
                return msg
            if time.time() > deadline:
                raise RuntimeError("no frame within %ss" % TIMEOUT)
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("connection closed by the server")
            self.buf.appendData(data.decode("utf-8"))

    def next(self, want):
        msg = self.read()
        if msg["cmd"] != want:
            raise RuntimeError("want %s, got %r" % (want, msg))
        return msg

    def receipt(self, want_id):
        got = self.next("RECEIPT")["headers"].get("receipt-id")
        if got != want_id:
            raise RuntimeError("receipt-id %r, want %r" % (got, want_id))
        return got

    def subscribe(self, dest, sub_id, receipt, ack="auto"):
        self.write(frame("SUBSCRIBE", {"destination": dest, "id": sub_id, "ack": ack, "receipt": receipt}))
        return self.receipt(receipt)

    def send(self, dest, body, receipt):
        self.write(frame("SEND", {"destination": dest, "receipt": receipt, "content-type": "text/plain"}, body))

    def close(self):
        # stomper.disconnect() omits the blank line before the NUL, so the
        # DISCONNECT is built as a proper frame here.
        self.write(frame("DISCONNECT", {"receipt": "bye"}))
        self.receipt("bye")
        self.sock.close()


def message_and_receipt(conn):
    """The MESSAGE may overtake the SEND's RECEIPT."""
    got = [conn.read(), conn.read()]
    msg = next(m for m in got if m["cmd"] == "MESSAGE")
    receipts = [m["headers"]["receipt-id"] for m in got if m["cmd"] == "RECEIPT"]
    return msg, receipts


def main():
    conn = Conn()
    emit(step="connect", version=conn.version)

    q = "/queue/" + ENV["E2E_QUEUE"]
    receipts = [conn.subscribe(q, "q", "sub-queue")]
    conn.send(q, "queue " + TAG, "send-queue")
    msg, more = message_and_receipt(conn)
    emit(step="queue", receipts=receipts + more, destination=msg["headers"].get("destination"), body=msg["body"])
    conn.write(stomper.unsubscribe("q"))

    topic = "/topic/" + ENV["E2E_TOPIC_KEY"]
    subs = [Conn(), Conn()]
    receipts = [s.subscribe(topic, "t%d" % i, "sub-topic-%d" % i) for i, s in enumerate(subs)]
    conn.send(topic, "topic " + TAG, "send-topic")
    receipts.append(conn.receipt("send-topic"))
    got = [s.next("MESSAGE") for s in subs]
    for s in subs:
        s.close()
    emit(step="topic", receipts=receipts, bodies=[m["body"] for m in got],
         destinations=[m["headers"].get("destination") for m in got])

    ex = "/exchange/amq.direct/" + ENV["E2E_DIRECT_KEY"]
    receipts = [conn.subscribe(ex, "x", "sub-exchange")]
    conn.send(ex, "direct " + TAG, "send-exchange")
    msg, more = message_and_receipt(conn)
    emit(step="exchange", receipts=receipts + more, destination=msg["headers"].get("destination"), body=msg["body"])
    conn.write(stomper.unsubscribe("x"))

    aq = "/queue/" + ENV["E2E_ACK_QUEUE"]
    conn.subscribe(aq, "a", "sub-ack", ack="client-individual")
    for i in (1, 2):
        conn.send(aq, "ack-%d %s" % (i, TAG), "send-ack-%d" % i)
    deliveries, nacked = [], False
    while len(deliveries) < 3:
        m = conn.read()
        if m["cmd"] == "RECEIPT":
            continue
        if m["cmd"] != "MESSAGE":
            raise RuntimeError("want MESSAGE, got %r" % m)
        h = m["headers"]
        deliveries.append({"body": m["body"], "redelivered": h.get("redelivered", "")})
        if m["body"].startswith("ack-1") and not nacked:
            conn.write(stomper.nack(h["message-id"], "a"))  # STOMP 1.1: message-id + subscription
            nacked = True
        else:
            conn.write(frame("ACK", {"message-id": h["message-id"], "subscription": "a",
                                     "receipt": "acked-%d" % len(deliveries)}))
    while True:
        m = conn.read()
        if m["cmd"] != "RECEIPT":
            raise RuntimeError("unexpected %r" % m)
        if m["headers"].get("receipt-id") == "acked-3":
            break
    emit(step="ack", deliveries=deliveries)

    conn.close()
    emit(step="done")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        emit(step="error", error="%s: %s" % (type(e).__name__, e))
        sys.exit(1)
