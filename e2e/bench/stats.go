package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Body layout shared by every producer and consumer of the benchmark: the
// first 8 bytes are the sequence number (producer index in the top 24 bits,
// message index below), the next 8 the send time in nanoseconds since
// clockBase. The rest is padding. minBodySize is therefore 16 bytes.
const (
	minBodySize   = 16
	producerShift = 40
)

var clockBase = time.Now()

// nowNanos is monotonic nanoseconds since clockBase.
func nowNanos() int64 { return int64(time.Since(clockBase)) }

// stampBody writes seq and the current time into body.
func stampBody(body []byte, seq uint64) {
	binary.BigEndian.PutUint64(body[0:8], seq)
	binary.BigEndian.PutUint64(body[8:16], uint64(nowNanos()))
}

// readStamp returns the sequence number and send time stamped by stampBody.
func readStamp(body []byte) (seq uint64, sentNanos int64, ok bool) {
	if len(body) < minBodySize {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(body[0:8]), int64(binary.BigEndian.Uint64(body[8:16])), true
}

// delivery checks exactly-once delivery: sent[p] is how many messages
// producer p sent (indexes 0..sent[p]-1), received holds every sequence
// number the consumers saw. It returns how many were missing, duplicated,
// or not sent by anyone.
type deliveryCheck struct {
	Missing, Duplicates, Unknown int
}

func (d deliveryCheck) ok() bool { return d.Missing == 0 && d.Duplicates == 0 && d.Unknown == 0 }

func (d deliveryCheck) String() string {
	if d.ok() {
		return "exactly once"
	}
	return fmt.Sprintf("missing %d, duplicates %d, unknown %d", d.Missing, d.Duplicates, d.Unknown)
}

func checkDelivery(sent []uint64, received [][]uint64) deliveryCheck {
	seen := make([][]bool, len(sent))
	for p, n := range sent {
		seen[p] = make([]bool, n)
	}
	var d deliveryCheck
	for _, seqs := range received {
		for _, seq := range seqs {
			p, i := seq>>producerShift, seq&(1<<producerShift-1)
			if p >= uint64(len(sent)) || i >= sent[p] {
				d.Unknown++
				continue
			}
			if seen[p][i] {
				d.Duplicates++
				continue
			}
			seen[p][i] = true
		}
	}
	for _, s := range seen {
		for _, got := range s {
			if !got {
				d.Missing++
			}
		}
	}
	return d
}

// percentile returns the q-quantile (0..1) of sorted by the nearest-rank
// method; NaN for an empty slice.
func percentile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return float64(sorted[rank-1])
}

// median of xs (NaNs ignored); NaN if none are left.
func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// processCPU is the user+system CPU time of this whole process
// (getrusage RUSAGE_SELF): the benchmark's clients, and the in-process
// gateway when it runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicksPerSecond is USER_HZ, 100 on every Linux we run on.
const clockTicksPerSecond = 100

// pidCPU reads utime+stime of pid from /proc/<pid>/stat; 0 if unreadable.
func pidCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// comm may contain spaces: fields start after the last ')'.
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0
	}
	fields := strings.Fields(string(raw[end+1:]))
	// fields[0] is state (field 3); utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicksPerSecond
}

// pidRSS is VmRSS of pid in bytes (pid 0: this process); 0 if unreadable.
func pidRSS(pid int) int64 {
	path := "/proc/self/status"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// findBrokerPID returns the RabbitMQ node's pid: the beam.smp process with
// the largest RSS (rabbitmqctl and rabbitmq-plugins run short-lived, small
// beam.smp processes too). 0 if there is none we can see.
func findBrokerPID() int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	best, bestRSS := 0, int64(0)
	for _, dir := range dirs {
		comm, err := os.ReadFile(dir + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "beam.smp" {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		if rss := pidRSS(pid); rss > bestRSS {
			best, bestRSS = pid, rss
		}
	}
	return best
}

// goMemory is the Go runtime's heap in use plus goroutine stacks, after two
// collections, in bytes.
func goMemory() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// brokerFDHeadroom is how many more files the broker may open: its soft
// "Max open files" limit minus its open descriptors; -1 if unknown. An
// idle-session round that exhausts it crashes RabbitMQ's vm_memory_monitor
// (emfile) and leaves the node unable to declare queues until
// `rabbitmqctl stop_app && rabbitmqctl start_app`.
func brokerFDHeadroom(pid int) int {
	if pid <= 0 {
		return -1
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return -1
	}
	limit := -1
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				limit, _ = strconv.Atoi(f[0])
			}
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if limit < 0 || err != nil {
		return -1
	}
	return limit - len(fds)
}
