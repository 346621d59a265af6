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
		return fmt.Sprintf("%d msgs, p50 %s p99 %s p99.9 %s, cpu %.1f µs/msg (broker %.1f), %s",
			r.Received, msStr(r.P50), msStr(r.P99), msStr(r.P999), r.ProcCPU, r.BrokerCPU, r.Check)
	default:
		return fmt.Sprintf("%d msgs, %.0f msg/s, cpu %.1f µs/msg (broker %.1f), %s",
			r.Received, r.Throughput, r.ProcCPU, r.BrokerCPU, r.Check)
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

// verdict says whether ratio (or, for idle memory, value) meets the goal.
func verdict(sc scenario, ratio, value float64) string {
	var met bool
	switch {
	case sc.Idle:
		if math.IsNaN(value) {
			return ""
		}
		met = value <= sc.Goal
	case math.IsNaN(ratio):
		return ""
	case sc.Rate > 0:
		met = ratio <= sc.Goal
	default:
		met = ratio >= sc.Goal
	}
	if met {
		return " ✓"
	}
	return " ✗"
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

func printReport(out io.Writer, o options, selected []scenario, systems []system, results map[string]map[string][]roundResult) {
	host, _ := os.Hostname()
	fmt.Fprintf(out, "\n## stompgate benchmark\n\n")
	fmt.Fprintf(out, "%s, %d CPUs (%s), %s, %s/%s. %d rounds per system, %s per round, STOMP client %q, window %d msgs / %d MiB.\n",
		host, runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		o.rounds, o.duration, o.client, o.window, o.windowBytes>>20)
	fmt.Fprintf(out, "Medians over rounds; ratios are stompgate (or plugin) median / AMQP median from this run. Machine noise: see min–max in the details.\n\n")

	hasPlugin, hasVariant, hasSameWork := false, false, false
	for _, sys := range systems {
		hasSameWork = hasSameWork || sys.Name() == "AMQP+ca"
		hasPlugin = hasPlugin || sys.Name() == "plugin"
		hasVariant = hasVariant || sys.Name() == "stompgate-b"
	}
	fmt.Fprintln(out, "| scenario | AMQP | stompgate | ratio | plugin | ratio | target |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, sc := range selected {
		head := func(name string) float64 { return medianHeadline(results, sc, name) }
		base, sg := head("AMQP"), head("stompgate")
		sgRatio := sg / base
		plugin, pluginRatio := "not run", "–"
		if hasPlugin {
			pl := head("plugin")
			plugin, pluginRatio = headlineStr(sc, pl), ratioStr(sc, pl/base)
		}
		if sc.Idle { // broker RSS vs gateway heap: not comparable as a ratio
			sgRatio, pluginRatio = math.NaN(), "–"
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s%s | %s | %s | %s |\n", sc.Title, headlineStr(sc, base), headlineStr(sc, sg),
			ratioStr(sc, sgRatio), verdict(sc, sgRatio, sg), plugin, pluginRatio, sc.Target)
	}
	fmt.Fprintln(out)
	if hasSameWork {
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
	if hasVariant {
		fmt.Fprintf(out, "A/B: stompgate-b runs with %s.\n\n", o.variantConfig)
		fmt.Fprintln(out, "| scenario | stompgate | stompgate-b | b / stompgate | b / AMQP |")
		fmt.Fprintln(out, "| --- | --- | --- | --- | --- |")
		for _, sc := range selected {
			head := func(name string) float64 { return medianHeadline(results, sc, name) }
			sg, b := head("stompgate"), head("stompgate-b")
			baseRatio := "–"
			if !sc.Idle {
				baseRatio = ratioStr(sc, b/head("AMQP"))
			}
			fmt.Fprintf(out, "| %s | %s | %s | %.2f | %s |\n", sc.Title, headlineStr(sc, sg), headlineStr(sc, b), b/sg, baseRatio)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "Latency row: p99 of (receive time − send time) over all messages of a round at a fixed rate. Memory row: growth per session over the second half of the idle sessions (the first half takes one-time costs); AMQP and plugin = broker RSS; stompgate = this process's Go heap+stacks (the gateway) in shared-connection mode (amqp.shared_connections); stompgate/per-session, one AMQP connection per session, and the growth over all sessions are in the details.")
	fmt.Fprintln(out)

	fmt.Fprintln(out, "### Details (medians, min–max over rounds)")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| scenario | system | result (min–max) | p50 / p99 / p99.9 | bench process CPU µs/msg | broker CPU µs/msg | delivery |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, sc := range selected {
		for _, sys := range systems {
			rs := results[sc.Key][sys.Name()]
			if len(rs) == 0 {
				continue // not run in this scenario (AMQP+ca: idle, persistent)
			}
			delivery := deliverySummary(rs)
			if sc.Idle {
				delivery = strings.Replace(delivery, "exactly once", "all sessions subscribed", 1)
				fmt.Fprintf(out, "| %s | %s | heap %s (%s over all), RSS %s, %.1f goroutines /session | – | – | broker RSS %s /session | %s |\n", sc.Key, sys.Name(),
					bytesStr(medianOf(rs, func(r roundResult) float64 { return r.MemPerSession })),
					bytesStr(medianOf(rs, func(r roundResult) float64 { return r.MemPerSessionAll })),
					bytesStr(medianOf(rs, func(r roundResult) float64 { return r.RSSPerSession })),
					medianOf(rs, func(r roundResult) float64 { return r.GoroutinesPerSess }),
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
			fmt.Fprintf(out, "| %s | %s | %s (%s–%s) | %s | %.1f | %.1f | %s |\n", sc.Key, sys.Name(),
				headlineStr(sc, medianOf(rs, func(r roundResult) float64 { return r.headline(sc, sys.Name()) })),
				headlineStr(sc, lo), headlineStr(sc, hi), lat,
				medianOf(rs, func(r roundResult) float64 { return r.ProcCPU }),
				medianOf(rs, func(r roundResult) float64 { return r.BrokerCPU }), delivery)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "CPU: bench process = getrusage of this whole process (producers, consumers and, for stompgate, the in-process gateway); broker = beam.smp utime+stime (10 ms ticks), which includes the plugin.")
	fmt.Fprintf(out, "Run at %s.\n", time.Now().UTC().Format(time.RFC3339))
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
