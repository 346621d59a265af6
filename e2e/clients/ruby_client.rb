# e2e client: the Ruby stomp gem (ruby-stomp 1.4), STOMP 1.2.
#
# Run by e2e/clients_test.go; prints one JSON object per step on stdout.
require "json"
require "stomp"
require "timeout"

ENVV = ENV.to_h
TAG = ENVV.fetch("E2E_TAG")
TIMEOUT = 10

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

def next_frame(conn)
  Timeout.timeout(TIMEOUT) { conn.receive } or raise "connection closed by the server"
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

# The MESSAGE may overtake the SEND's RECEIPT.
def message_and_receipt(conn)
  got = [next_frame(conn), next_frame(conn)]
  msg = got.find { |f| f.command == "MESSAGE" } or raise "no MESSAGE in #{got.inspect}"
  [msg, got.select { |f| f.command == "RECEIPT" }.map { |f| f.headers["receipt-id"] }]
end

def main
  conn = connect
  emit(step: "connect", version: conn.protocol)

  q = "/queue/" + ENVV.fetch("E2E_QUEUE")
  conn.subscribe(q, { "ack" => "auto", "receipt" => "sub-queue" }, "q")
  receipts = [receipt(conn, "sub-queue")]
  conn.publish(q, "queue #{TAG}", { "receipt" => "send-queue" })
  msg, more = message_and_receipt(conn)
  emit(step: "queue", receipts: receipts + more, destination: msg.headers["destination"], body: msg.body)
  conn.unsubscribe(q, { "receipt" => "unsub-queue" }, "q")
  receipt(conn, "unsub-queue")

  topic = "/topic/" + ENVV.fetch("E2E_TOPIC_KEY")
  subs = [connect, connect]
  receipts = subs.each_with_index.map do |s, i|
    s.subscribe(topic, { "receipt" => "sub-topic-#{i}" }, "t#{i}")
    receipt(s, "sub-topic-#{i}")
  end
  conn.publish(topic, "topic #{TAG}", { "receipt" => "send-topic" })
  receipts << receipt(conn, "send-topic")
  got = subs.map { |s| expect(s, "MESSAGE") }
  subs.each { |s| s.disconnect }
  emit(step: "topic", receipts: receipts, bodies: got.map(&:body), destinations: got.map { |m| m.headers["destination"] })

  ex = "/exchange/amq.direct/" + ENVV.fetch("E2E_DIRECT_KEY")
  conn.subscribe(ex, { "receipt" => "sub-exchange" }, "x")
  receipts = [receipt(conn, "sub-exchange")]
  conn.publish(ex, "direct #{TAG}", { "receipt" => "send-exchange" })
  msg, more = message_and_receipt(conn)
  emit(step: "exchange", receipts: receipts + more, destination: msg.headers["destination"], body: msg.body)
  conn.unsubscribe(ex, { "receipt" => "unsub-exchange" }, "x")
  receipt(conn, "unsub-exchange")

  aq = "/queue/" + ENVV.fetch("E2E_ACK_QUEUE")
  conn.subscribe(aq, { "ack" => "client-individual", "receipt" => "sub-ack" }, "a")
  receipt(conn, "sub-ack")
  [1, 2].each { |i| conn.publish(aq, "ack-#{i} #{TAG}", { "receipt" => "send-ack-#{i}" }) }
  deliveries = []
  nacked = false
  while deliveries.length < 3
    f = next_frame(conn)
    next if f.command == "RECEIPT"
    raise "want MESSAGE, got #{f.command} #{f.headers.inspect}" unless f.command == "MESSAGE"
    deliveries << { body: f.body, redelivered: f.headers["redelivered"].to_s }
    if f.body.start_with?("ack-1") && !nacked
      conn.nack(f.headers["ack"]) # STOMP 1.2: id = the MESSAGE's ack header
      nacked = true
    else
      conn.ack(f.headers["ack"], { "receipt" => "acked-#{deliveries.length}" })
    end
  end
  loop do
    f = expect(conn, "RECEIPT")
    break if f.headers["receipt-id"] == "acked-3"
  end
  emit(step: "ack", deliveries: deliveries)

  conn.disconnect({ "receipt" => "bye" })
  emit(step: "done")
end

begin
  main
rescue StandardError, Timeout::Error => e
  emit(step: "error", error: "#{e.class}: #{e.message}")
  exit 1
end
