#!/usr/bin/env python3
"""e2e client: stomp.py 8.x (python3-stomp), STOMP 1.2, transactions and
request/reply.

Run by e2e/semantics_test.go (TestScriptingClientsTxnRPC). Reads
its target and names from the environment and prints one JSON object per
step on stdout; the Go test asserts them. Exits non-zero with
{"step":"error",...} on failure.
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
QUIET = 0.5


def emit(**obj):
    print(json.dumps(obj), flush=True)


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.frames = queue.Queue()

    def on_message(self, frame):
        self.frames.put(("MESSAGE", frame))

    def on_receipt(self, frame):
        self.frames.put(("RECEIPT", frame))

    def on_error(self, frame):
        self.frames.put(("ERROR", frame))

    def next(self, want, timeout=TIMEOUT):
        try:
            cmd, frame = self.frames.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError("no %s within %ss" % (want, timeout))
        if cmd != want:
            raise RuntimeError("want %s, got %s %s %r" % (want, cmd, frame.headers, frame.body))
        return frame

    def receipt(self, want_id):
        got = self.next("RECEIPT").headers.get("receipt-id")
        if got != want_id:
            raise RuntimeError("receipt-id %r, want %r" % (got, want_id))
        return got

    def silent(self):
        """Number of frames that arrive within QUIET seconds (want 0)."""
        n = 0
        try:
            while True:
                self.frames.get(timeout=QUIET)
                n += 1
        except queue.Empty:
            return n


def connect():
    conn = stomp.Connection12([(HOST, PORT)], vhost=VHOST, reconnect_attempts_max=1)
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect(LOGIN, PASSCODE, wait=True)
    return conn, listener


def main():
    # Transactions: SENDs inside BEGIN/COMMIT appear only after COMMIT; an
    # ABORTed one never.
    consumer, cl = connect()
    producer, pl = connect()
    tq = "/queue/" + ENV["E2E_TXN_QUEUE"]
    consumer.subscribe(tq, id="txn", ack="auto", headers={"receipt": "sub-txn"})
    cl.receipt("sub-txn")
    tx = producer.begin()
    for i in (1, 2):
        producer.send(tq, "txn-%d %s" % (i, TAG), transaction=tx)
    early = cl.silent()
    producer.commit(tx, headers={"receipt": "commit"})
    receipts = [pl.receipt("commit")]
    bodies = [cl.next("MESSAGE").body for _ in range(2)]
    tx = producer.begin()
    producer.send(tq, "aborted " + TAG, transaction=tx)
    producer.abort(tx, headers={"receipt": "abort"})
    receipts.append(pl.receipt("abort"))
    after_abort = cl.silent()
    emit(step="txn", receipts=receipts, bodies=bodies, early=early, after_abort=after_abort)

    # Request/reply: reply-to:/temp-queue/... and an answer via the
    # /reply-queue/ destination the responder sees.
    rq = "/queue/" + ENV["E2E_RPC_QUEUE"]
    consumer.subscribe(rq, id="rpc", ack="client-individual", headers={"receipt": "sub-rpc"})
    cl.receipt("sub-rpc")
    producer.send(rq, "request " + TAG, headers={"reply-to": "/temp-queue/rpc", "correlation-id": "corr-1"})
    req = cl.next("MESSAGE")
    reply_to = req.headers.get("reply-to", "")
    consumer.send(reply_to, "reply " + TAG, headers={"correlation-id": req.headers.get("correlation-id", "")})
    consumer.ack(req.headers["ack"])
    reply = pl.next("MESSAGE")
    emit(step="rpc", reply_to=reply_to, body=reply.body,
         subscription=reply.headers.get("subscription", ""),
         destination=reply.headers.get("destination", ""),
         correlation=reply.headers.get("correlation-id", ""))

    producer.disconnect(receipt="bye-p")
    consumer.disconnect(receipt="bye-c")
    emit(step="done")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, then fail the process
        emit(step="error", error="%s: %s" % (type(e).__name__, e))
        sys.exit(1)
