# ActiveMQ differential client: the Ruby stomp gem (ruby-stomp 1.4), STOMP 1.2.
#
#   ruby activemq_scenarios.rb HOST PORT PREFIX [--raw DIR] [--only NAME,...]
#
# The same scenarios as activemq_scenarios.py, written the way a Ruby
# application on ActiveMQ writes them (selector, client-id +
# activemq.subscriptionName, expires, AMQ_SCHEDULED_DELAY, topic wildcards,
# NACK and dead-lettering, activemq.prefetchSize, activemq.exclusive). It
# prints one JSON object per scenario on stdout, normalised so that two runs
# against equivalent servers print the same lines (PREFIX becomes {P}; ids,
# acks and timestamps become placeholders). With --raw DIR every frame the
# server sent is also written as received to DIR/<scenario>.txt.
#
# Login guest/guest, host "/". A failed scenario prints
# {"scenario": NAME, "error": ...}; the exit status is then 1.
require "fileutils"
require "json"
require "stomp"
require "timeout"

TIMEOUT = 10
QUIET = 1.5
MAX_DELIVERIES = 8

$host = nil
$port = nil
$prefix = nil
$raw = nil

def deep_sort(obj)
  case obj
  when Hash then obj.keys.sort.each_with_object({}) { |k, h| h[k] = deep_sort(obj[k]) }
  when Array then obj.map { |v| deep_sort(v) }
  else obj
  end
end

def emit(obj)
  $stdout.puts(JSON.generate(deep_sort(obj)))
  $stdout.flush
end

def now_ms
  (Time.now.to_f * 1000).to_i
end

VOLATILE = { "message-id" => "<message-id>", "ack" => "<ack>", "timestamp" => "<timestamp>",
             "scheduledJobId" => "<job-id>" }.freeze

def norm_value(key, value)
  value = value.join(",") if value.is_a?(Array)
  value = value.to_s
  return VOLATILE[key] if VOLATILE.key?(key) && !["", "0"].include?(value)
  if key == "expires" && !["", "0"].include?(value)
    return value unless value =~ /\A-?\d+\z/
    return Integer(value) > now_ms ? "<future>" : "<past>"
  end
  value.gsub($prefix, "{P}")
end

def norm(headers)
  headers.keys.sort.each_with_object({}) { |k, h| h[k.gsub($prefix, "{P}")] = norm_value(k, headers[k]) }
end

def header(frame, key)
  v = frame.headers[key]
  v.is_a?(Array) ? v.first : v
end

# Conn wraps a Stomp::Connection with a name and raw recording.
class Conn
  attr_reader :stomp

  def initialize(name, connect_headers = {})
    @name = name
    @stomp = Stomp::Connection.new(
      hosts: [{ login: "guest", passcode: "guest", host: $host, port: $port, ssl: false }],
      connect_headers: { "accept-version" => "1.2", "host" => "/", "heart-beat" => "0,0" }.merge(connect_headers),
      reliable: false, connect_timeout: TIMEOUT
    )
    unless @stomp.open? && @stomp.connection_frame.command == "CONNECTED"
      raise "CONNECT failed: #{@stomp.connection_frame.inspect}"
    end
  end

  # get returns the next frame, or nil after timeout seconds or when the
  # server closed the connection.
  def get(timeout = TIMEOUT)
    f = begin
      Timeout.timeout(timeout) { @stomp.receive }
    rescue Timeout::Error
      nil
    end
    record(f) if f
    f
  end

  def record(f)
    return unless $raw
    $raw.write("# #{@name} #{format('%.3f', Process.clock_gettime(Process::CLOCK_MONOTONIC))}\n#{f.command}\n")
    f.headers.each { |k, v| Array(v).each { |one| $raw.write("#{k}:#{one}\n") } }
    $raw.write("\n#{f.body}\n^@\n")
    $raw.flush
  end

  # receipt waits for RECEIPT id; returns the frames that came first.
  def receipt(id)
    before = []
    deadline = Time.now + TIMEOUT
    loop do
      f = get([deadline - Time.now, 0.01].max)
      raise "#{@name}: no RECEIPT #{id} within #{TIMEOUT}s (got #{before.map(&:command)})" unless f
      return before if f.command == "RECEIPT" && header(f, "receipt-id") == id
      before << f
    end
  end

  # messages returns MESSAGE frames until none arrives for quiet seconds.
  def messages(quiet = QUIET, limit = 1000)
    got = []
    while got.length < limit
      f = get(quiet)
      break unless f
      raise "#{@name}: ERROR #{header(f, 'message')} #{f.body.inspect}" if f.command == "ERROR"
      got << f if f.command == "MESSAGE"
    end
    got
  end

  def reply(timeout = 5)
    f = get(timeout)
    [f&.command, f && f.command == "ERROR" ? header(f, "message") : nil]
  end

  def subscribe(dest, id, headers = {})
    @stomp.subscribe(dest, headers, id)
  end

  def unsubscribe(dest, id, headers = {})
    @stomp.unsubscribe(dest, headers, id)
  end

  def publish(dest, body, headers = {})
    @stomp.publish(dest, body, headers)
  end

  def ack(frame, headers = {})
    @stomp.ack(header(frame, "ack"), headers)
  end

  def nack(frame, headers = {})
    @stomp.nack(header(frame, "ack"), headers)
  end

  def close
    @stomp.disconnect if @stomp.open?
  rescue StandardError
    nil
  end
end

def dest(kind, name)
  "/#{kind}/#{$prefix}.#{name}"
end

SELECTOR_MESSAGES = [
  ["m1", { "n" => "1", "color" => "red", "opt" => "x" }],
  ["m2", { "n" => "2", "color" => "green" }],
  ["m3", { "n" => "3", "color" => "blue", "opt" => "y" }],
  ["m4", { "n" => "10", "color" => "redish" }],
  ["m5", { "n" => "2.5", "color" => "Red" }],
  ["m6", { "n" => "abc", "color" => "r_d" }]
].freeze
SELECTORS = [
  "n > 2", "n = 2", "n <> 2", "n >= 2.5",
  "color = 'red'", "color <> 'red'", "color IN ('red', 'blue')", "color NOT IN ('red', 'blue')",
  "color LIKE 're%'", "color LIKE 'r_d'", "color LIKE 'r!_d' ESCAPE '!'", "color NOT LIKE 're%'",
  "n BETWEEN 2 AND 3", "n NOT BETWEEN 2 AND 3", "opt IS NULL", "opt IS NOT NULL",
  "opt = 'x' OR n > 5", "opt = 'x' AND color = 'red'", "NOT (color = 'red')",
  "missing > 1", "NOT (missing > 1)", "missing > 1 OR n = 1", "missing > 1 AND n = 1",
  "TRUE", "FALSE"
].freeze
ARITH_SELECTORS = ["n * 2 = 4", "n + 1 > 3"].freeze
BAD_SELECTORS = ["n >", "n > '2'", "color LIKE 5", "color = 'unterminated"].freeze

def scenario_selectors
  topic = dest("topic", "sel")
  sub = Conn.new("sub")
  sub.subscribe(topic, "all", "ack" => "auto", "receipt" => "sub-all")
  sub.receipt("sub-all")
  SELECTORS.each_with_index do |sel, i|
    sub.subscribe(topic, "s#{i}", "ack" => "auto", "selector" => sel, "receipt" => "sub-#{i}")
    sub.receipt("sub-#{i}")
  end
  pub = Conn.new("pub")
  SELECTOR_MESSAGES.each do |body, hdrs|
    pub.publish(topic, body, hdrs.merge("receipt" => "send-#{body}"))
    pub.receipt("send-#{body}")
  end
  got = Hash.new { |h, k| h[k] = [] }
  sub.messages.each { |f| got[header(f, "subscription")] << f.body }
  matched = { "all" => got.delete("all") || [] }
  SELECTORS.each_with_index { |sel, i| matched[sel] = got.delete("s#{i}") || [] }
  matched["unknown-subscriptions"] = got unless got.empty?
  pub.close
  sub.close

  bad = {}
  BAD_SELECTORS.each do |sel|
    c = Conn.new("bad")
    c.subscribe(topic, "bad", "selector" => sel, "receipt" => "sub-bad")
    cmd, msg = c.reply
    bad[sel] = { "reply" => cmd, "message" => msg }
    c.close
  end

  arith = {}
  ARITH_SELECTORS.each_with_index do |sel, i|
    t = dest("topic", "arith#{i}")
    s = Conn.new("arith-sub")
    s.subscribe(t, "a", "ack" => "auto", "selector" => sel, "receipt" => "sub-a")
    cmd, = s.reply
    res = { "subscribe" => cmd }
    if cmd == "RECEIPT"
      p = Conn.new("arith-pub")
      p.publish(t, "n2", "n" => "2", "receipt" => "send-n2")
      res["send"], res["message"] = p.reply
      res["bodies"] = s.messages.map(&:body)
      p.close
    end
    s.close
    arith[sel] = res
  end

  q = dest("queue", "selq")
  qc = Conn.new("queue")
  qc.subscribe(q, "q", "ack" => "auto", "selector" => "n > 2", "receipt" => "sub-q")
  cmd, msg = qc.reply
  queue_sel = { "reply" => cmd, "message" => msg }
  if cmd == "RECEIPT"
    SELECTOR_MESSAGES.first(4).each { |body, hdrs| qc.publish(q, body, hdrs) }
    queue_sel["bodies"] = qc.messages.map(&:body)
  end
  qc.close
  emit("scenario" => "selectors", "matched" => matched, "bad_selector" => bad, "arithmetic" => arith,
       "queue_selector" => queue_sel)
end

def scenario_durable
  topic = dest("topic", "dur")
  cid = { "client-id" => "#{$prefix}-cid" }
  named = { "activemq.subscriptionName" => "#{$prefix}-sub" }
  steps = []

  c = Conn.new("durable-1", cid)
  c.subscribe(topic, "d", named.merge("ack" => "auto", "receipt" => "sub-1"))
  c.receipt("sub-1")
  c.close

  p = Conn.new("pub")
  p.publish(topic, "while-away", "receipt" => "send-1", "persistent" => "true")
  p.receipt("send-1")

  c = Conn.new("durable-2", cid)
  c.subscribe(topic, "d", named.merge("ack" => "auto", "receipt" => "sub-2"))
  msgs = c.receipt("sub-2").select { |f| f.command == "MESSAGE" } + c.messages
  steps << { "step" => "reconnect", "bodies" => msgs.map(&:body), "headers" => msgs.map { |m| norm(m.headers) } }
  [["unsubscribe-active", named], ["unsubscribe-consumer", {}], ["unsubscribe-durable", named]].each do |step, hdrs|
    begin
      c.unsubscribe(topic, "d", hdrs.merge("receipt" => step))
      cmd, msg = c.reply
    rescue StandardError # a server that ended the session after an ERROR
      cmd, msg = "closed", nil
    end
    steps << { "step" => step, "reply" => cmd, "message" => msg }
  end
  c.close

  p.publish(topic, "after-unsubscribe", "receipt" => "send-2", "persistent" => "true")
  p.receipt("send-2")
  c = Conn.new("durable-3", cid)
  c.subscribe(topic, "d", named.merge("ack" => "auto", "receipt" => "sub-3"))
  msgs = c.receipt("sub-3").select { |f| f.command == "MESSAGE" } + c.messages
  steps << { "step" => "resubscribe", "bodies" => msgs.map(&:body) }
  p.publish(topic, "live", "receipt" => "send-3")
  p.receipt("send-3")
  steps << { "step" => "live", "bodies" => c.messages.map(&:body) }
  c.unsubscribe(topic, "d", "receipt" => "unsub-2")
  c.reply
  c.unsubscribe(topic, "d", named.merge("receipt" => "unsub-3"))
  c.reply
  c.close
  p.close
  emit("scenario" => "durable", "steps" => steps)
end

def scenario_expires
  q = dest("queue", "exp")
  p = Conn.new("pub")
  sends = [["expired", now_ms - 60_000], ["live", now_ms + 600_000], ["no-expires", nil]].map do |body, exp|
    h = { "receipt" => "send-#{body}" }
    h["expires"] = exp.to_s if exp
    p.publish(q, body, h)
    f = p.get
    { "body" => body, "reply" => f&.command, "receipt-id" => f && header(f, "receipt-id") }
  end
  c = Conn.new("sub")
  c.subscribe(q, "e", "ack" => "auto")
  msgs = c.messages
  c.close
  p.close
  emit("scenario" => "expires", "sends" => sends, "bodies" => msgs.map(&:body),
       "headers" => msgs.to_h { |m| [m.body, norm(m.headers)] })
end

def scenario_scheduled
  q = dest("queue", "delay")
  delay = 2000
  c = Conn.new("sub")
  c.subscribe(q, "d", "ack" => "auto", "receipt" => "sub")
  c.receipt("sub")
  p = Conn.new("pub")
  start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  elapsed = -> { (Process.clock_gettime(Process::CLOCK_MONOTONIC) - start) * 1000 }
  p.publish(q, "delayed", "AMQ_SCHEDULED_DELAY" => delay.to_s, "receipt" => "send-delayed")
  p.receipt("send-delayed")
  receipt_ms = elapsed.call
  p.publish(q, "immediate", "receipt" => "send-immediate")
  p.receipt("send-immediate")
  order = []
  at = {}
  headers = {}
  deadline = delay + 10_000
  while order.length < 2 && elapsed.call < deadline
    f = c.get([(deadline - elapsed.call) / 1000.0, 0.01].max)
    next unless f&.command == "MESSAGE"
    order << f.body
    at[f.body] = elapsed.call
    headers[f.body] = norm(f.headers)
  end
  p.close
  c.close
  d = at["delayed"]
  warn format("scheduled: delayed after %s ms, receipt after %.0f ms", d ? d.round.to_s : "never", receipt_ms)
  emit("scenario" => "scheduled", "order" => order, "headers" => headers,
       "receipt_before_delay" => receipt_ms < delay,
       "not_early" => !d.nil? && d >= delay,
       "on_time" => !d.nil? && d <= delay + [delay * 0.1, 1000].max)
end

def scenario_wildcards
  subs = { "prices.>" => "w-rest", "prices.*" => "w-one", "*.nyse.*" => "w-mid" }
  c = Conn.new("sub")
  subs.each do |pattern, sid|
    c.subscribe(dest("topic", pattern), sid, "ack" => "auto", "receipt" => sid)
    c.receipt(sid)
  end
  p = Conn.new("pub")
  ["prices.nyse.ibm", "prices.nasdaq", "prices", "other.nyse.x", "prices.a.b.c"].each do |key|
    p.publish(dest("topic", key), key, "receipt" => "send-#{key}")
    p.receipt("send-#{key}")
  end
  got = Hash.new { |h, k| h[k] = [] }
  c.messages.each do |f|
    got[header(f, "subscription")] << { "body" => f.body, "destination" => header(f, "destination").to_s.gsub($prefix, "{P}") }
  end
  p.close
  c.close
  emit("scenario" => "wildcards", "matched" => subs.to_h { |pattern, sid| [pattern, got[sid]] })
end

def dlq_contents(q)
  c = Conn.new("dlq")
  c.subscribe("/queue/DLQ." + q.delete_prefix("/queue/"), "dlq", "ack" => "client-individual")
  msgs = c.messages(3)
  msgs.each { |m| c.ack(m) }
  c.close
  msgs.map { |m| { "body" => m.body, "headers" => norm(m.headers) } }
end

def nack_loop(name, persistent)
  q = dest("queue", name)
  p = Conn.new("pub")
  h = { "receipt" => "send" }
  h["persistent"] = "true" if persistent
  p.publish(q, "poison-#{name}", h)
  p.receipt("send")
  p.close
  c = Conn.new("consumer")
  c.subscribe(q, "r", "ack" => "client-individual")
  deliveries = []
  while deliveries.length < MAX_DELIVERIES
    f = c.get(5)
    break unless f
    if f.command != "MESSAGE"
      deliveries << { "frame" => f.command, "message" => header(f, "message") }
      break
    end
    deliveries << norm(f.headers)
    c.nack(f)
  end
  c.close
  { "deliveries" => deliveries, "capped_at" => deliveries.length >= MAX_DELIVERIES ? MAX_DELIVERIES : nil,
    "dlq" => dlq_contents(q) }
end

def scenario_redelivery
  out = { "scenario" => "redelivery" }
  out["nack-persistent"] = nack_loop("nack-persistent", true)
  out["nack-nonpersistent"] = nack_loop("nack-nonpersistent", false)

  q = dest("queue", "disconnect")
  p = Conn.new("pub")
  p.publish(q, "poison-disconnect", "receipt" => "send", "persistent" => "true")
  p.receipt("send")
  p.close
  deliveries = []
  while deliveries.length < MAX_DELIVERIES
    c = Conn.new("consumer")
    c.subscribe(q, "r", "ack" => "client-individual")
    f = c.get(5)
    c.close
    break unless f
    deliveries << (f.command == "MESSAGE" ? norm(f.headers) : { "frame" => f.command })
  end
  c = Conn.new("drain")
  c.subscribe(q, "r", "ack" => "auto")
  left = c.messages(3).map(&:body)
  c.close
  out["disconnect"] = { "deliveries" => deliveries,
                        "capped_at" => deliveries.length >= MAX_DELIVERIES ? MAX_DELIVERIES : nil,
                        "left_on_queue" => left, "dlq" => dlq_contents(q) }
  emit(out)
end

def scenario_exclusive
  q = dest("queue", "excl")
  sub_h = { "activemq.exclusive" => "true", "activemq.prefetchSize" => "1", "ack" => "client-individual" }
  c1 = Conn.new("c1")
  c1.subscribe(q, "x1", sub_h.merge("receipt" => "sub-1"))
  c1.receipt("sub-1")
  c2 = Conn.new("c2")
  c2.subscribe(q, "x2", sub_h.merge("receipt" => "sub-2"))
  c2.receipt("sub-2")
  p = Conn.new("pub")
  (1..4).each do |i|
    p.publish(q, "m#{i}", "receipt" => "send-#{i}")
    p.receipt("send-#{i}")
  end
  first = c1.messages
  c2_early = c2.messages(0.5)
  got1 = first.map(&:body)
  first.each { |m| c1.ack(m) }
  loop do
    more = c1.messages(QUIET, 1)
    break if more.empty?
    got1 << more.first.body
    c1.ack(more.first)
  end
  c1.close
  p.publish(q, "m5", "receipt" => "send-5")
  p.receipt("send-5")
  got2 = (c2_early + c2.messages).map(&:body)
  c2.close
  p.close
  emit("scenario" => "exclusive", "c1_before_ack" => first.map(&:body),
       "c2_while_c1_subscribed" => c2_early.map(&:body), "c1" => got1, "c2" => got2)
end

SCENARIOS = {
  "selectors" => method(:scenario_selectors),
  "durable" => method(:scenario_durable),
  "expires" => method(:scenario_expires),
  "scheduled" => method(:scenario_scheduled),
  "wildcards" => method(:scenario_wildcards),
  "redelivery" => method(:scenario_redelivery),
  "exclusive" => method(:scenario_exclusive)
}.freeze

def main(argv)
  args = argv.dup
  raw_dir = nil
  only = nil
  if (i = args.index("--raw"))
    raw_dir = args[i + 1]
    args.slice!(i, 2)
  end
  if (i = args.index("--only"))
    only = args[i + 1].split(",")
    args.slice!(i, 2)
  end
  unless args.length == 3 && args[2] =~ /\A[A-Za-z0-9_-]+\z/
    warn "usage: ruby activemq_scenarios.rb HOST PORT PREFIX [--raw DIR] [--only NAME,...]"
    return 2
  end
  $host = args[0]
  $port = Integer(args[1])
  $prefix = args[2]
  failed = false
  SCENARIOS.each do |name, fn|
    next if only && !only.include?(name)
    if raw_dir
      FileUtils.mkdir_p(raw_dir)
      $raw = File.open(File.join(raw_dir, "#{name}.txt"), "w")
    end
    begin
      fn.call
    rescue StandardError, Timeout::Error => e
      failed = true
      emit("scenario" => name, "error" => "#{e.class}: #{e.message}".gsub($prefix, "{P}"))
    ensure
      $raw&.close
      $raw = nil
    end
  end
  failed ? 1 : 0
end

exit(main(ARGV))
