package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// describe is the one-line progress report of a round.
func describe(sc scenario, r roundResult) string {
	switch {
	case r.Unavailable:
		return "SKIPPED: " + r.Err.Error()
	case r.Err != nil:
		return "FAILED: " + r.Err.Error()
	case !r.Check.ok():
		return "FAILED: " + r.Check.String()
	case sc.Idle:
		return fmt.Sprintf("heap %s/session, rss %s/session, broker %s/session",
			bytesStr(r.MemPerSession), bytesStr(r.RSSPerSession), bytesStr(r.BrokerPerSess))
	case sc.Rate > 0:
		return fmt.Sprintf("%d msgs, p50 %s p99 %s p99.9 %s, cpu %.1f µs/msg (gateway %.1f, broker %.1f), %s",
			r.Received, msStr(r.P50), msStr(r.P99), msStr(r.P999), r.ProcCPU, r.GatewayCPU, r.BrokerCPU, r.Check)
	default:
		return fmt.Sprintf("%d msgs, %.0f msg/s, cpu %.1f µs/msg (gateway %.1f, broker %.1f), %s",
			r.Received, r.Throughput, r.ProcCPU, r.GatewayCPU, r.BrokerCPU, r.Check)
	}
}

func msStr(ns float64) string {
	if math.IsNaN(ns) {
		return "–"
	}
	return fmt.Sprintf("%.3f ms", ns/1e6)
}

func bytesStr(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	if math.Abs(b) >= 1<<10 {
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func rateStr(r float64) string {
	if math.IsNaN(r) {
		return "–"
	}
	s := fmt.Sprintf("%.0f", r)
	// thousands separators
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String() + " msg/s"
}

// headlineStr formats a scenario's headline number.
func headlineStr(sc scenario, v float64) string {
	switch {
	case sc.Idle:
		return bytesStr(v)
	case sc.Rate > 0:
		return msStr(v)
	default:
		return rateStr(v)
	}
}

// medianOf is the median over rounds of f, failed rounds left out.
func medianOf(rs []roundResult, f func(roundResult) float64) float64 {
	var xs []float64
	for _, r := range rs {
		if r.ok() {
			xs = append(xs, f(r))
		}
	}
	return median(xs)
}

func ratioStr(sc scenario, ratio float64) string {
	if math.IsNaN(ratio) || math.IsInf(ratio, 0) {
		return "–"
	}
	if sc.Rate > 0 {
		return fmt.Sprintf("%.2f×", ratio)
	}
	return fmt.Sprintf("%.2f", ratio)
}

// medianHeadline is the median over rounds of system name's headline
// number in scenario sc.
func medianHeadline(results map[string]map[string][]roundResult, sc scenario, name string) float64 {
	return medianOf(results[sc.Key][name], func(r roundResult) float64 { return r.headline(sc, name) })
}

// target is one line of issue 12's table of targets.
type target struct {
	figure string
	goal   string
	// measure returns the measured value as text and whether it meets
	// the goal; ok is false when it could not be measured in this run.
	measure func() (value string, met, ok bool)
}

func issueTargets(selected []scenario, results map[string]map[string][]roundResult) []target {
	byKey := map[string]scenario{}
	for _, sc := range selected {
		byKey[sc.Key] = sc
	}
	gatewayCPU := func(key string, limit float64) func() (string, bool, bool) {
		return func() (string, bool, bool) {
			if _, ok := byKey[key]; !ok {
				return "", false, false
			}
			v := medianOf(results[key]["stompgate"], func(r roundResult) float64 { return r.GatewayCPU })
			if math.IsNaN(v) {
				return "", false, false
			}
			return fmt.Sprintf("%.0f µs", v), v <= limit, true
		}
	}
	// throughput: stompgate / plugin for each key, all ≥ goal.
	throughput := func(goal float64, keys ...string) func() (string, bool, bool) {
		return func() (string, bool, bool) {
			var parts []string
			met, any := true, false
			for _, key := range keys {
				sc, ok := byKey[key]
				if !ok {
					continue
				}
				r := medianHeadline(results, sc, "stompgate") / medianHeadline(results, sc, "plugin")
				if math.IsNaN(r) {
					continue
				}
				any = true
				met = met && r >= goal
				parts = append(parts, fmt.Sprintf("%.2f", r))
			}
			return strings.Join(parts, ", "), met, any
		}
	}
	latency := func() (string, bool, bool) {
		var parts []string
		met, any := true, false
		for _, key := range []string{"latency1k", "latency"} {
			sc, ok := byKey[key]
			if !ok {
				continue
			}
			for _, q := range []struct {
				name string
				f    func(roundResult) float64
			}{{"p50", func(r roundResult) float64 { return r.P50 }}, {"p99", func(r roundResult) float64 { return r.P99 }}} {
				r := medianOf(results[key]["stompgate"], q.f) / medianOf(results[key]["plugin"], q.f)
				if math.IsNaN(r) {
					continue
				}
				any = true
				met = met && r <= 1.0
				parts = append(parts, fmt.Sprintf("%s@%d %.2f×", q.name, sc.Rate, r))
			}
		}
		return strings.Join(parts, ", "), met, any
	}
	idle := func() (string, bool, bool) {
		sc, ok := byKey["idle"]
		if !ok {
			return "", false, false
		}
		v := medianHeadline(results, sc, "stompgate")
		if math.IsNaN(v) {
			return "", false, false
		}
		return bytesStr(v) + " (this run's -idle-sessions)", v <= 32<<10, true
	}
	return []target{
		{"gateway CPU per message, 1 KiB 1→1", "≤ 45 µs", gatewayCPU("1k", 45)},
		{"gateway CPU per message, 64 KiB", "≤ 150 µs", gatewayCPU("64k", 150)},
		{"gateway CPU per message at 1,000 msg/s", "≤ 80 µs", gatewayCPU("latency1k", 80)},
		{"throughput / plugin: 1 KiB, 16 B, 4→4, 64 in flight", "≥ 1.15 each", throughput(1.15, "1k", "16b", "4x4", "persistent")},
		{"throughput / plugin: 64 KiB", "≥ 0.85", throughput(0.85, "64k")},
		{"throughput / plugin: one RECEIPT awaited per SEND", "≥ 1.0", throughput(1.0, "receipt1")},
		{"p50 and p99 / plugin, at 1,000 and at 5,000 msg/s", "≤ 1.0×", latency},
		{"memory per idle session", "≤ 32 KiB", idle},
	}
}

// spread is (max − min) / median of a system's headline over rounds, in %.
func spread(rs []roundResult, sc scenario, name string) string {
	lo, hi := minMax(rs, func(r roundResult) float64 { return r.headline(sc, name) })
	m := medianOf(rs, func(r roundResult) float64 { return r.headline(sc, name) })
	if math.IsNaN(m) || m == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f %%", 100*(hi-lo)/m)
}

func printReport(out io.Writer, o options, selected []scenario, systems []system, results map[string]map[string][]roundResult, loadBefore string) {
	host, _ := os.Hostname()
	mode := "a cmd/stompgate process (its CPU from /proc/<pid>/stat)"
	if o.inProcess {
		mode = "in-process (its CPU is part of the bench process's)"
	}
	fmt.Fprintf(out, "\n## stompgate benchmark\n\n")
	fmt.Fprintf(out, "%s, %d CPUs (%s), %s, %s/%s. %d rounds per system, %s per round, STOMP clients %s (the first is the headline), gateway %s, window %d msgs / %d MiB.\n",
		host, runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		o.rounds, o.duration, strings.Join(o.clients, ", "), mode, o.window, o.windowBytes>>20)
	fmt.Fprintf(out, "Load average (1, 5, 15 min) at the start: %s; at the end: %s.\n", loadBefore, loadAverage())
	fmt.Fprintf(out, "Medians over rounds; round-to-round spread ((max − min) / median) per system in the details.\n\n")

	fmt.Fprintf(out, "### Targets of issue 12 (client %s)\n\n", o.clients[0])
	fmt.Fprintln(out, "| figure | measured | target | met |")
	fmt.Fprintln(out, "| --- | --- | --- | --- |")
	for _, t := range issueTargets(selected, results) {
		v, met, ok := t.measure()
		mark := "✗"
		switch {
		case !ok:
			v, mark = "not run", "–"
		case met:
			mark = "✓"
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s |\n", t.figure, v, t.goal, mark)
	}
	fmt.Fprintln(out)

	names := map[string]bool{}
	for _, sys := range systems {
		names[sys.Name()] = true
	}
	for i, client := range o.clients {
		suffix := ""
		if i > 0 {
			suffix = "+" + client
		}
		fmt.Fprintf(out, "### Client %s\n\n", client)
		fmt.Fprintln(out, "| scenario | AMQP | stompgate | / AMQP | plugin | / AMQP | stompgate / plugin |")
		fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- |")
		for _, sc := range selected {
			if sc.Idle && i > 0 {
				continue
			}
			head := func(name string) float64 { return medianHeadline(results, sc, name) }
			base, sg, pl := head("AMQP"), head("stompgate"+suffix), head("plugin"+suffix)
			if sc.Idle {
				sg, pl = head("stompgate"), head("plugin")
			}
			sgRatio, plRatio, vs := ratioStr(sc, sg/base), ratioStr(sc, pl/base), ratioStr(sc, sg/pl)
			if sc.Idle { // broker RSS vs gateway heap: not comparable as a ratio
				sgRatio, plRatio, vs = "–", "–", "–"
			}
			plugin := "not run"
			if names["plugin"+suffix] {
				plugin = headlineStr(sc, pl)
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s |\n", sc.Title, headlineStr(sc, base), headlineStr(sc, sg), sgRatio, plugin, plRatio, vs)
		}
		fmt.Fprintln(out)
	}
	if names["AMQP+ca"] {
		fmt.Fprintln(out, "Same broker work: AMQP+ca is direct AMQP with publisher confirms and acked consumers (no_ack=false, prefetch 1000, multiple=true every 64), the broker work stompgate asks for by design (semantics 1 and 10.3); the plain AMQP baseline uses no_ack=true and no confirms. stompgate / AMQP+ca is the gateway's own share.")
		fmt.Fprintln(out)
		fmt.Fprintln(out, "| scenario | AMQP | AMQP+ca | AMQP+ca / AMQP | stompgate / AMQP+ca |")
		fmt.Fprintln(out, "| --- | --- | --- | --- | --- |")
		for _, sc := range selected {
			if sc.Idle || sc.Persistent {
				continue
			}
			head := func(name string) float64 { return medianHeadline(results, sc, name) }
			base, same, sg := head("AMQP"), head("AMQP+ca"), head("stompgate")
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n", sc.Title, headlineStr(sc, base), headlineStr(sc, same), ratioStr(sc, same/base), ratioStr(sc, sg/same))
		}
		fmt.Fprintln(out)
	}
	if names["stompgate-b"] {
		fmt.Fprintf(out, "A/B: stompgate-b runs with config %q, binary %q, environment %q (empty: as stompgate).\n\n", o.variantConfig, o.variantBin, o.variantEnv)
		fmt.Fprintln(out, "| scenario | stompgate | stompgate-b | b / stompgate | gateway CPU µs/msg a → b |")
		fmt.Fprintln(out, "| --- | --- | --- | --- | --- |")
		for _, sc := range selected {
			if sc.Idle {
				continue
			}
			head := func(name string) float64 { return medianHeadline(results, sc, name) }
			sg, b := head("stompgate"), head("stompgate-b")
			cpu := func(name string) float64 {
				return medianOf(results[sc.Key][name], func(r roundResult) float64 { return r.GatewayCPU })
			}
			fmt.Fprintf(out, "| %s | %s | %s | %.2f | %.1f → %.1f |\n", sc.Title, headlineStr(sc, sg), headlineStr(sc, b), b/sg, cpu("stompgate"), cpu("stompgate-b"))
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "Latency rows: p99 of (receive time − send time) over all messages of a round at a fixed rate. Memory row: growth per session over the second half of the idle sessions (the first half takes one-time costs); AMQP and plugin = broker RSS; stompgate = the Go heap+stacks of a gateway inside the bench process in shared-connection mode (amqp.shared_connections); stompgate/per-session, one AMQP connection per session, and the growth over all sessions are in the details.")
	fmt.Fprintln(out)

	fmt.Fprintln(out, "### Details (medians, min–max over rounds)")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| scenario | system | result (min–max) | spread | p50 / p99 / p99.9 | gateway CPU µs/msg | bench process CPU µs/msg | broker CPU µs/msg | delivery |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, sc := range selected {
		for _, sys := range systems {
			rs := results[sc.Key][sys.Name()]
			if len(rs) == 0 {
				continue // not run in this scenario (AMQP+ca: idle, persistent)
			}
			delivery := deliverySummary(rs)
			if sc.Idle {
				delivery = strings.Replace(delivery, "exactly once", "all sessions subscribed", 1)
				fmt.Fprintf(out, "| %s | %s | heap %s (%s over all), RSS %s, %.1f goroutines /session | %s | – | – | – | – | broker RSS %s /session; %s |\n", sc.Key, sys.Name(),
					bytesStr(medianOf(rs, func(r roundResult) float64 { return r.MemPerSession })),
					bytesStr(medianOf(rs, func(r roundResult) float64 { return r.MemPerSessionAll })),
					bytesStr(medianOf(rs, func(r roundResult) float64 { return r.RSSPerSession })),
					medianOf(rs, func(r roundResult) float64 { return r.GoroutinesPerSess }),
					spread(rs, sc, sys.Name()),
					bytesStr(medianOf(rs, func(r roundResult) float64 { return r.BrokerPerSess })), delivery)
				continue
			}
			lo, hi := minMax(rs, func(r roundResult) float64 { return r.headline(sc, sys.Name()) })
			lat := "–"
			if sc.Rate > 0 {
				lat = fmt.Sprintf("%s / %s / %s",
					msStr(medianOf(rs, func(r roundResult) float64 { return r.P50 })),
					msStr(medianOf(rs, func(r roundResult) float64 { return r.P99 })),
					msStr(medianOf(rs, func(r roundResult) float64 { return r.P999 })))
			}
			gw := "–"
			if v := medianOf(rs, func(r roundResult) float64 { return r.GatewayCPU }); !math.IsNaN(v) {
				gw = fmt.Sprintf("%.1f", v)
			}
			fmt.Fprintf(out, "| %s | %s | %s (%s–%s) | %s | %s | %s | %.1f | %.1f | %s |\n", sc.Key, sys.Name(),
				headlineStr(sc, medianOf(rs, func(r roundResult) float64 { return r.headline(sc, sys.Name()) })),
				headlineStr(sc, lo), headlineStr(sc, hi), spread(rs, sc, sys.Name()), lat, gw,
				medianOf(rs, func(r roundResult) float64 { return r.ProcCPU }),
				medianOf(rs, func(r roundResult) float64 { return r.BrokerCPU }), delivery)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "CPU: gateway = utime+stime of the stompgate process from /proc/<pid>/stat (10 ms ticks); bench process = getrusage of this whole process (producers and consumers, and with -in-process the gateway too); broker = beam.smp utime+stime, which includes the plugin.")
	fmt.Fprintf(out, "Run at %s.\n", time.Now().UTC().Format(time.RFC3339))
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

func deliverySummary(rs []roundResult) string {
	failed, skipped := 0, 0
	var first, why string
	for _, r := range rs {
		if r.Unavailable {
			skipped++
			why = r.Err.Error()
			continue
		}
		if !r.ok() {
			failed++
			if first == "" {
				if r.Err != nil {
					first = r.Err.Error()
				} else {
					first = r.Check.String()
				}
			}
		}
	}
	ran := len(rs) - skipped
	note := ""
	if skipped > 0 {
		note = fmt.Sprintf(" (%d skipped: %s)", skipped, why)
	}
	if failed == 0 {
		return fmt.Sprintf("exactly once, %d/%d rounds%s", ran, ran, note)
	}
	return fmt.Sprintf("**%d/%d rounds failed**: %s%s", failed, ran, first, note)
}

func minMax(rs []roundResult, f func(roundResult) float64) (float64, float64) {
	lo, hi := math.NaN(), math.NaN()
	for _, r := range rs {
		if !r.ok() {
			continue
		}
		v := f(r)
		if math.IsNaN(lo) || v < lo {
			lo = v
		}
		if math.IsNaN(hi) || v > hi {
			hi = v
		}
	}
	return lo, hi
}

func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return "unknown CPU"
}
