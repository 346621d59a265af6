# e2e client: the Ruby stomp gem (ruby-stomp 1.4), STOMP 1.2, transactions
# and request/reply.
#
# Run by e2e/semantics_test.go (TestScriptingClientsTxnRPC); prints
# one JSON object per step on stdout.
require "json"
require "stomp"
require "timeout"

ENVV = ENV.to_h
TAG = ENVV.fetch("E2E_TAG")
TIMEOUT = 10
QUIET = 0.5

def emit(obj)
  $stdout.puts(JSON.generate(obj))
  $stdout.flush
end

def connect
  conn = Stomp::Connection.new(
    hosts: [{ login: ENVV.fetch("STOMP_LOGIN"), passcode: ENVV.fetch("STOMP_PASSCODE"),
              host: ENVV.fetch("STOMP_HOST"), port: Integer(ENVV.fetch("STOMP_PORT")), ssl: false }],
    connect_headers: { "accept-version" => "1.2", "host" => ENVV.fetch("STOMP_VHOST"), "heart-beat" => "0,0" },
    reliable: false, connect_timeout: TIMEOUT
  )
  raise "CONNECT failed: #{conn.connection_frame.inspect}" unless conn.open? && conn.connection_frame.command == "CONNECTED"
  conn
end

def next_frame(conn, timeout = TIMEOUT)
  Timeout.timeout(timeout) { conn.receive } or raise "connection closed by the server"
end

def expect(conn, want)
  f = next_frame(conn)
  raise "want #{want}, got #{f.command} #{f.headers.inspect} #{f.body.inspect}" unless f.command == want
  f
end

def receipt(conn, id)
  got = expect(conn, "RECEIPT").headers["receipt-id"]
  raise "receipt-id #{got.inspect}, want #{id.inspect}" unless got == id
  got
end

# silent counts the frames that arrive within QUIET seconds (want 0).
def silent(conn)
  n = 0
  loop do
    next_frame(conn, QUIET)
    n += 1
  end
rescue Timeout::Error
  n
end

def main
  consumer = connect
  producer = connect
  tq = "/queue/" + ENVV.fetch("E2E_TXN_QUEUE")
  consumer.subscribe(tq, { "ack" => "auto", "receipt" => "sub-txn" }, "txn")
  receipt(consumer, "sub-txn")
  producer.begin("t1")
  [1, 2].each { |i| producer.publish(tq, "txn-#{i} #{TAG}", { "transaction" => "t1" }) }
  early = silent(consumer)
  producer.commit("t1", { "receipt" => "commit" })
  receipts = [receipt(producer, "commit")]
  bodies = [expect(consumer, "MESSAGE").body, expect(consumer, "MESSAGE").body]
  producer.begin("t2")
  producer.publish(tq, "aborted #{TAG}", { "transaction" => "t2" })
  producer.abort("t2", { "receipt" => "abort" })
  receipts << receipt(producer, "abort")
  after_abort = silent(consumer)
  emit(step: "txn", receipts: receipts, bodies: bodies, early: early, after_abort: after_abort)

  rq = "/queue/" + ENVV.fetch("E2E_RPC_QUEUE")
  consumer.subscribe(rq, { "ack" => "client-individual", "receipt" => "sub-rpc" }, "rpc")
  receipt(consumer, "sub-rpc")
  producer.publish(rq, "request #{TAG}", { "reply-to" => "/temp-queue/rpc", "correlation-id" => "corr-1" })
  req = expect(consumer, "MESSAGE")
  reply_to = req.headers["reply-to"].to_s
  consumer.publish(reply_to, "reply #{TAG}", { "correlation-id" => req.headers["correlation-id"].to_s })
  consumer.ack(req.headers["ack"])
  reply = expect(producer, "MESSAGE")
  emit(step: "rpc", reply_to: reply_to, body: reply.body,
       subscription: reply.headers["subscription"].to_s,
       destination: reply.headers["destination"].to_s,
       correlation: reply.headers["correlation-id"].to_s)

  producer.disconnect({ "receipt" => "bye-p" })
  consumer.disconnect({ "receipt" => "bye-c" })
  emit(step: "done")
rescue StandardError, Timeout::Error => e
  emit(step: "error", error: "#{e.class}: #{e.message}")
  exit 1
end

main
