package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/config"
)

// scenario is one row of the benchmark (issues 6 and 12).
type scenario struct {
	Key        string
	Title      string
	BodySize   int
	Producers  int
	Consumers  int
	Persistent bool // persistent, receipts (InFlight awaited at once), client-individual acks
	InFlight   int  // persistent: SENDs whose RECEIPT may be outstanding; 0 = receiptWindow
	Rate       int  // total msg/s for the latency scenario; 0 = throughput
	Idle       bool // memory per idle session
}

// inFlight is how many persistent SENDs may await their RECEIPT at once.
func (sc scenario) inFlight() int {
	if sc.InFlight > 0 {
		return sc.InFlight
	}
	return receiptWindow
}

func scenarios(rate int) []scenario {
	return []scenario{
		{Key: "1k", Title: "1 KiB transient 1→1", BodySize: 1 << 10, Producers: 1, Consumers: 1},
		{Key: "16b", Title: "16 B transient 1→1", BodySize: 16, Producers: 1, Consumers: 1},
		{Key: "4x4", Title: "4→4 producers/consumers (1 KiB)", BodySize: 1 << 10, Producers: 4, Consumers: 4},
		{Key: "64k", Title: "64 KiB transient 1→1", BodySize: 64 << 10, Producers: 1, Consumers: 1},
		{Key: "persistent", Title: "1 KiB persistent + receipts (64 in flight), client-individual", BodySize: 1 << 10, Producers: 1, Consumers: 1, Persistent: true},
		{Key: "receipt1", Title: "1 KiB persistent, one RECEIPT awaited per SEND (1 in flight)", BodySize: 1 << 10, Producers: 1, Consumers: 1, Persistent: true, InFlight: 1},
		{Key: "latency", Title: fmt.Sprintf("p99 latency at %d msg/s (1 KiB)", rate), BodySize: 1 << 10, Producers: 1, Consumers: 1, Rate: rate},
		{Key: "latency1k", Title: "p99 latency at 1000 msg/s (1 KiB)", BodySize: 1 << 10, Producers: 1, Consumers: 1, Rate: 1000},
		{Key: "idle", Title: "memory per idle session", Idle: true},
	}
}

type options struct {
	amqpURL       string
	plugin        string
	rounds        int
	duration      time.Duration
	rate          int
	window        int
	windowBytes   int
	idleSessions  int
	shared        bool
	clients       []string
	inProcess     bool
	only          string
	cpuProfile    string
	drainTimeout  time.Duration
	variantConfig string
	variantBin    string
	variantEnv    string
	sameWork      bool
}

func main() {
	var o options
	flag.StringVar(&o.amqpURL, "amqp", envOr("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), "broker URL (guest/guest)")
	flag.StringVar(&o.plugin, "plugin", "", "address of RabbitMQ's STOMP plugin, e.g. 127.0.0.1:61613; empty skips it")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds per system and scenario")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "publishing time per round")
	flag.IntVar(&o.rate, "rate", 5000, "message rate of the latency scenario")
	flag.IntVar(&o.window, "window", 10000, "max messages sent but not yet received (throughput scenarios)")
	flag.IntVar(&o.windowBytes, "window-bytes", 16<<20, "max bytes sent but not yet received; lowers -window for large bodies")
	flag.IntVar(&o.idleSessions, "idle-sessions", 300, "sessions opened by the idle-memory scenario; a system whose sessions would not leave 200 descriptors spare at the broker (1024 here) or in this process is left out")
	flag.BoolVar(&o.shared, "shared", false, "run stompgate in shared-connection mode (amqp.shared_connections) in the traffic scenarios too; the idle scenario always measures shared mode, and per-session mode in its details")
	clients := flag.String("stomp-client", "gostomp,raw", "STOMP clients, comma-separated: gostomp (go-stomp/v3) and/or raw (minimal, in this package); the first one's results are the headline, the others run as \"stompgate+<client>\" and \"plugin+<client>\" in the same alternation")
	flag.BoolVar(&o.inProcess, "in-process", false, "run the traffic gateway inside the benchmark process (its CPU is then part of the bench process's) instead of as a cmd/stompgate process")
	quick := flag.Bool("quick", false, "quick run: 3 rounds of 2 s unless -rounds or -duration are given")
	flag.StringVar(&o.only, "scenarios", "", "comma-separated subset of 1k,16b,4x4,64k,persistent,receipt1,latency,latency1k,idle")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the stompgate gateway during its first round of each scenario to FILE.<scenario> (the gateway process's /debug/pprof, or this process with -in-process)")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 60*time.Second, "how long to wait for the last messages after publishing stops")
	flag.BoolVar(&o.sameWork, "same-work", true, "also run \"AMQP+ca\": direct AMQP with stompgate's broker work (publisher confirms, acked consumers) in the transient and latency scenarios")
	flag.StringVar(&o.variantConfig, "variant-config", "", "also run \"stompgate-b\", a second gateway configured by this YAML file, in the same alternation (A/B of a setting)")
	flag.StringVar(&o.variantBin, "variant-bin", "", "also run \"stompgate-b\" from this stompgate binary (e.g. one built from an earlier commit), in the same alternation: a before/after A/B; with -variant-config, that configuration")
	flag.StringVar(&o.variantEnv, "variant-env", "", "also run \"stompgate-b\" with these extra environment variables (comma-separated KEY=VALUE, e.g. GOMAXPROCS=1,GOGC=400), in the same alternation")
	flag.StringVar(&memProfile, "memprofile", "", "write a heap profile with the idle sessions open to FILE.<system> (idle scenario)")
	idleChildSpec := flag.String("idle-child", "", "internal: open addr,queue,n idle sessions and hold them until stdin closes")
	flag.Parse()
	if *idleChildSpec != "" {
		os.Exit(runIdleChild(*idleChildSpec))
	}
	if memProfile != "" {
		runtime.MemProfileRate = 64 // fine-grained: idle sessions are small
	}
	for _, c := range strings.Split(*clients, ",") {
		c = strings.TrimSpace(c)
		if c != "raw" && c != "gostomp" {
			fmt.Fprintln(os.Stderr, "bench: -stomp-client takes raw and/or gostomp")
			os.Exit(2)
		}
		o.clients = append(o.clients, c)
	}
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 3
		}
		if !set["duration"] {
			o.duration = 2 * time.Second
		}
	}
	ok, err := run(o, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "bench: some rounds failed or lost/duplicated messages; see above")
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// roundResult is one system's result in one round of one scenario.
type roundResult struct {
	Received       uint64
	Throughput     float64 // msg/s
	P50, P99, P999 float64 // ns, latency scenario
	ProcCPU        float64 // µs of this process per message
	GatewayCPU     float64 // µs of the stompgate process per message (NaN: not a gateway process)
	BrokerCPU      float64 // µs of the broker per message
	MemPerSession  float64 // bytes: Go heap+stacks of this process, marginal (runIdle)
	// MemPerSessionAll: the same over all sessions, one-time costs included
	MemPerSessionAll float64
	RSSPerSession    float64 // bytes: RSS of this process
	BrokerPerSess    float64 // bytes: broker RSS
	// GoroutinesPerSess: goroutines of this process per idle session
	GoroutinesPerSess float64
	Check             deliveryCheck
	Err               error
	// Unavailable: the server was not listening when the round began (the
	// plugin can be disabled by someone else mid-run), or the idle sessions
	// would not fit the descriptors here; the round is left out and does
	// not fail the run.
	Unavailable bool

	sent []uint64 // per producer
}

func (r roundResult) ok() bool { return r.Err == nil && r.Check.ok() }

// headline is the number compared across systems in the summary table.
func (r roundResult) headline(sc scenario, systemName string) float64 {
	switch {
	case !r.ok():
		return math.NaN()
	case sc.Idle && strings.HasPrefix(systemName, "stompgate"):
		return r.MemPerSession
	case sc.Idle:
		return r.BrokerPerSess
	case sc.Rate > 0:
		return r.P99
	default:
		return r.Throughput
	}
}

func run(o options, out, progress io.Writer) (bool, error) {
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	prefix := "stompgate-bench-" + hex.EncodeToString(runID)

	adm, err := newAdmin(o.amqpURL)
	if err != nil {
		return false, err
	}
	defer func() { _ = adm.close() }()

	// Every gateway is shut down at the end of the run.
	var gateways []*gateway.Server
	var servedChans []chan error
	var processes []*gatewayProcess
	defer func() {
		for i, g := range gateways {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = g.Shutdown(ctx)
			cancel()
			<-servedChans[i]
		}
		for _, p := range processes {
			p.stop()
		}
	}()
	startInProcess := func(configPath string, shared bool) (string, error) {
		srv, served, err := startGateway(o, configPath, shared)
		if err != nil {
			return "", err
		}
		gateways, servedChans = append(gateways, srv), append(servedChans, served)
		return srv.Addr().String(), nil
	}
	var bin, binDir string
	if !o.inProcess {
		var err error
		if binDir, err = os.MkdirTemp("", "stompgate-bench-"); err != nil {
			return false, err
		}
		defer os.RemoveAll(binDir)
		fmt.Fprintln(progress, "bench: building cmd/stompgate")
		if bin, err = buildGateway(binDir); err != nil {
			return false, err
		}
	}
	// start starts the traffic gateway "name": a cmd/stompgate process, or
	// with -in-process a gateway in this process (proc nil).
	start := func(name, configPath string, shared bool) (string, *gatewayProcess, error) {
		if o.inProcess {
			addr, err := startInProcess(configPath, shared)
			return addr, nil, err
		}
		cfg, err := gatewayConfig(o, configPath, shared)
		if err != nil {
			return "", nil, err
		}
		exe, env := bin, []string(nil)
		if name == "stompgate-b" {
			if o.variantBin != "" {
				exe = o.variantBin
			}
			if o.variantEnv != "" {
				env = strings.Split(o.variantEnv, ",")
			}
		}
		p, err := startGatewayProcess(exe, binDir, cfg, name, env)
		if err != nil {
			return "", nil, err
		}
		processes = append(processes, p)
		return p.addr, p, nil
	}

	addr, proc, err := start("stompgate", "", o.shared)
	if err != nil {
		return false, err
	}
	perConn := 0
	if o.shared {
		perConn = config.DefaultConfig().AMQP.SessionsPerConnection
	}
	var vaddr string
	var vproc *gatewayProcess
	if o.variantConfig != "" || o.variantBin != "" || o.variantEnv != "" {
		// A/B of a gateway setting or build: a second gateway with the
		// configuration from -variant-config or the binary -variant-bin,
		// in the same alternation.
		if vaddr, vproc, err = start("stompgate-b", o.variantConfig, o.shared); err != nil {
			return false, err
		}
	}
	systems := []system{amqpSystem{url: o.amqpURL}}
	if o.sameWork {
		systems = append(systems, amqpSystem{url: o.amqpURL, sameWork: true})
	}
	// One stompgate and one plugin system per STOMP client; the first
	// client's keep the plain names (the headline).
	for i, client := range o.clients {
		suffix := ""
		if i > 0 {
			suffix = "+" + client
		}
		systems = append(systems, stompSystem{name: "stompgate" + suffix, addr: addr, client: client, inProcess: o.inProcess, proc: proc, perBrokerConn: perConn})
		if vaddr != "" {
			systems = append(systems, stompSystem{name: "stompgate-b" + suffix, addr: vaddr, client: client, inProcess: o.inProcess, proc: vproc, perBrokerConn: perConn})
		}
		if o.plugin != "" {
			systems = append(systems, stompSystem{name: "plugin" + suffix, addr: o.plugin, client: client})
		}
	}
	// The idle scenario measures the Go heap and stacks of gateways in
	// this process: "stompgate" in shared-connection mode (issue 6: many
	// sessions, few broker connections) and, as "stompgate/per-session",
	// the default mode with one AMQP connection per session.
	sharedAddr, err := startInProcess("", true)
	if err != nil {
		return false, err
	}
	perSessionAddr, err := startInProcess("", false)
	if err != nil {
		return false, err
	}
	idleSystems := []system{systems[0],
		stompSystem{name: "stompgate", addr: sharedAddr, client: o.clients[0], inProcess: true, perBrokerConn: config.DefaultConfig().AMQP.SessionsPerConnection},
		stompSystem{name: "stompgate/per-session", addr: perSessionAddr, client: o.clients[0], inProcess: true}}
	if o.plugin != "" {
		idleSystems = append(idleSystems, stompSystem{name: "plugin", addr: o.plugin, client: o.clients[0]})
	}
	brokerPID := findBrokerPID()
	if brokerPID == 0 {
		fmt.Fprintln(progress, "bench: no beam.smp process visible; broker CPU and memory are not reported")
	}

	var selected []scenario
	for _, sc := range scenarios(o.rate) {
		if o.only == "" || contains(strings.Split(o.only, ","), sc.Key) {
			selected = append(selected, sc)
		}
	}
	if len(selected) == 0 {
		return false, errors.New("-scenarios selects nothing")
	}

	loadBefore := loadAverage()
	results := make(map[string]map[string][]roundResult) // scenario → system → rounds
	allOK := true
	for _, sc := range selected {
		results[sc.Key] = make(map[string][]roundResult)
		roundSystems := systems
		if sc.Idle {
			roundSystems = idleSystems
		}
		for round := range o.rounds {
			for _, sys := range roundSystems {
				if a, ok := sys.(amqpSystem); ok && a.sameWork && (sc.Idle || sc.Persistent) {
					continue // the same as AMQP there: nothing to separate
				}
				queue := fmt.Sprintf("%s-%s-%s-%d", prefix, sc.Key, queueSafe.Replace(sys.Name()), round)
				if err := adm.declare(queue); err != nil {
					// The admin channel is gone after a channel error; a
					// fresh admin keeps the run (and its report) going.
					allOK = false
					res := roundResult{Err: fmt.Errorf("declare %s: %w", queue, err)}
					results[sc.Key][sys.Name()] = append(results[sc.Key][sys.Name()], res)
					fmt.Fprintf(progress, "%-10s round %d %-9s %s\n", sc.Key, round+1, sys.Name(), describe(sc, res))
					if adm, err = reopenAdmin(adm, o.amqpURL); err != nil {
						return false, err
					}
					continue
				}
				stopProfile := func() {}
				if o.cpuProfile != "" && round == 0 && sys.Name() == "stompgate" && !sc.Idle {
					if s := sys.(stompSystem); s.proc != nil {
						done := s.proc.profile(o.cpuProfile+"."+sc.Key, o.duration, progress)
						stopProfile = func() { <-done }
					} else {
						stopProfile = startProfile(o.cpuProfile+"."+sc.Key, progress)
					}
				}
				runtime.GC()
				var res roundResult
				if err := reachable(sys); err != nil {
					res = roundResult{Err: err, Unavailable: true}
				} else if sc.Idle {
					if err := idleFits(sys, o.idleSessions, brokerPID); err != nil {
						// Left out, not failed: a run with many idle sessions
						// measures the systems this machine can hold.
						res = roundResult{Err: err, Unavailable: true}
					} else {
						res = runIdle(sys, queue, o.idleSessions, brokerPID)
					}
				} else {
					res = runTraffic(sys, sc, queue, o, brokerPID)
				}
				stopProfile()
				if err := adm.delete(queue); err != nil {
					fmt.Fprintf(progress, "bench: delete %s: %v\n", queue, err)
					if adm, err = reopenAdmin(adm, o.amqpURL); err != nil {
						return false, err
					}
				}
				if !res.ok() && !res.Unavailable {
					allOK = false
				}
				results[sc.Key][sys.Name()] = append(results[sc.Key][sys.Name()], res)
				fmt.Fprintf(progress, "%-10s round %d %-9s %s\n", sc.Key, round+1, sys.Name(), describe(sc, res))
			}
		}
	}
	printReport(out, o, selected, append(systems, idleSystems[2]), results, loadBefore)
	return allOK, nil
}

// fdReserve is the broker descriptors the idle scenario leaves to others.
const fdReserve = 200

// idleFits tells whether n idle sessions of sys fit the descriptors of the
// broker (one connection per session, or per perBrokerConn sessions plus
// the concurrent authentication dials of shared mode) and of this process
// (one per session: the client side, or with an in-process gateway the
// server side, its clients being in a child process, OpenIdleBatch), with
// fdReserve left over.
func idleFits(sys system, n, brokerPID int) error {
	brokerConns, ownFDs := n, n
	if s, ok := sys.(stompSystem); ok && s.perBrokerConn > 0 {
		brokerConns = n/s.perBrokerConn + 1 + sharedAuthDials
	}
	if h := brokerFDHeadroom(brokerPID); h >= 0 && brokerConns+fdReserve > h {
		return fmt.Errorf("%d idle sessions need %d broker connections; the broker has %d descriptors left (%d kept in reserve): lower -idle-sessions, use shared-connection mode or raise the broker's ulimit -n",
			n, brokerConns, h, fdReserve)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(ownFDs+fdReserve) > lim.Cur {
		return fmt.Errorf("%d idle sessions need %d descriptors in this process, its limit is %d: raise ulimit -n", n, ownFDs+fdReserve, lim.Cur)
	}
	return nil
}

// sharedAuthDials is the gateway's bound on authentication dials in flight
// in shared-connection mode (gateway maxConcurrentAuthDials).
const sharedAuthDials = 32

// reopenAdmin replaces an admin whose channel a broker error closed.
func reopenAdmin(old *admin, url string) (*admin, error) {
	_ = old.close()
	return newAdmin(url)
}

// reachable checks that a STOMP server accepts TCP connections.
func reachable(sys system) error {
	s, ok := sys.(stompSystem)
	if !ok {
		return nil
	}
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("%s not listening: %w", s.name, err)
	}
	return conn.Close()
}

// queueSafe turns a system name into part of a queue name.
var queueSafe = strings.NewReplacer("/", "-", "+", "-")

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// startGateway starts an in-process gateway with the default configuration,
// or the one in configPath (as `stompgate --config`), on 127.0.0.1:0, in
// shared-connection mode if shared.
func startGateway(o options, configPath string, shared bool) (*gateway.Server, chan error, error) {
	cfg, err := gatewayConfig(o, configPath, shared)
	if err != nil {
		return nil, nil, err
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	log.SetOutput(os.Stderr)
	srv, err := gateway.NewServer(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, nil, err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	return srv, served, nil
}

// memProfile is -memprofile: set once by main before any round runs.
var memProfile string

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: memprofile:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, "bench: memprofile:", err)
	}
}

func startProfile(path string, progress io.Writer) func() {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(progress, "bench: cpuprofile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(progress, "bench: cpuprofile:", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		fmt.Fprintln(progress, "bench: wrote", path)
	}
}

// consumerLog is what one consumer saw; only its delivery goroutine writes
// it, and it is read after that goroutine ended (consumer.Close).
type consumerLog struct {
	seqs      []uint64
	latencies []int64
	badBodies int
}

func runTraffic(sys system, sc scenario, queue string, o options, brokerPID int) (res roundResult) {
	window := o.window
	if w := o.windowBytes / sc.BodySize; w < window {
		window = w
	}
	window = max(window, receiptWindow)
	credit := make(chan struct{}, window) // one token per message in flight
	abort := make(chan struct{})          // closed when a consumer fails
	var abortOnce sync.Once
	var received atomic.Uint64
	var lastReceived atomic.Int64

	logs := make([]*consumerLog, sc.Consumers)
	consumers := make([]consumer, 0, sc.Consumers)
	defer func() {
		for _, c := range consumers {
			if err := c.Close(); err != nil && res.Err == nil {
				res.Err = fmt.Errorf("closing consumer: %w", err)
			}
			if err := c.Err(); err != nil && res.Err == nil {
				res.Err = fmt.Errorf("consumer: %w", err)
			}
		}
		if res.Err != nil {
			return
		}
		var seqs [][]uint64
		var lat []int64
		for _, l := range logs {
			seqs = append(seqs, l.seqs)
			lat = append(lat, l.latencies...)
		}
		res.Check = checkDelivery(res.sent, seqs)
		for _, l := range logs {
			res.Check.Unknown += l.badBodies
		}
		if sc.Rate > 0 {
			slices.Sort(lat)
			res.P50, res.P99, res.P999 = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999)
		}
	}()
	for i := range sc.Consumers {
		l := &consumerLog{}
		logs[i] = l
		c, err := sys.NewConsumer(queue, sc, func(body []byte) {
			if seq, sent, ok := readStamp(body); ok && len(body) == sc.BodySize {
				l.seqs = append(l.seqs, seq)
				now := nowNanos()
				if sc.Rate > 0 {
					l.latencies = append(l.latencies, now-sent)
				}
				lastReceived.Store(now)
			} else {
				l.badBodies++
			}
			received.Add(1)
			select {
			case <-credit:
			default:
			}
		})
		if err != nil {
			res.Err = fmt.Errorf("consumer: %w", err)
			return res
		}
		consumers = append(consumers, c)
	}

	producers := make([]producer, 0, sc.Producers)
	for range sc.Producers {
		p, err := sys.NewProducer(queue, sc)
		if err != nil {
			res.Err = fmt.Errorf("producer: %w", err)
			for _, p := range producers {
				_ = p.Close()
			}
			return res
		}
		producers = append(producers, p)
	}

	// Watch consumers for early failure so producers do not wait forever.
	watchDone := make(chan struct{})
	defer close(watchDone)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-watchDone:
				return
			case <-t.C:
				for _, c := range consumers {
					if c.Err() != nil {
						abortOnce.Do(func() { close(abort) })
						return
					}
				}
			}
		}
	}()

	gwPID := 0
	if s, ok := sys.(stompSystem); ok && s.proc != nil {
		gwPID = s.proc.pid()
	}
	cpu0, broker0, gw0 := processCPU(), pidCPU(brokerPID), pidCPU(gwPID)
	start := nowNanos()
	deadline := time.Now().Add(o.duration)
	sent := make([]uint64, sc.Producers)
	errs := make([]error, sc.Producers)
	var wg sync.WaitGroup
	for pi, p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[pi], errs[pi] = produce(p, uint64(pi), sc, deadline, credit, abort)
			if err := p.Close(); err != nil && errs[pi] == nil {
				errs[pi] = fmt.Errorf("closing producer: %w", err)
			}
		}()
	}
	wg.Wait()
	res.sent = sent
	var total uint64
	for pi := range sent {
		total += sent[pi]
		if errs[pi] != nil && res.Err == nil {
			res.Err = fmt.Errorf("producer %d: %w", pi, errs[pi])
		}
	}
	drainBy := time.Now().Add(o.drainTimeout)
	for received.Load() < total && time.Now().Before(drainBy) && res.Err == nil {
		select {
		case <-abort:
			drainBy = time.Now()
		case <-time.After(time.Millisecond):
		}
	}
	elapsed := time.Duration(lastReceived.Load() - start)
	cpu, brokerCPU, gwCPU := processCPU()-cpu0, pidCPU(brokerPID)-broker0, pidCPU(gwPID)-gw0
	time.Sleep(100 * time.Millisecond) // let duplicates, if any, arrive
	res.Received = received.Load()
	if res.Received > 0 && elapsed > 0 {
		res.Throughput = float64(res.Received) / elapsed.Seconds()
		res.ProcCPU = float64(cpu.Microseconds()) / float64(res.Received)
		res.BrokerCPU = float64(brokerCPU.Microseconds()) / float64(res.Received)
		res.GatewayCPU = math.NaN()
		if gwPID != 0 {
			res.GatewayCPU = float64(gwCPU.Microseconds()) / float64(res.Received)
		}
	}
	if res.Received == 0 && res.Err == nil {
		res.Err = errors.New("no message arrived")
	}
	return res
}

// produce publishes from producer index pi until deadline: as fast as the
// window allows, or at sc.Rate/sc.Producers msg/s. It returns how many
// messages it sent (sequence numbers pi<<producerShift | 0..n-1).
func produce(p producer, pi uint64, sc scenario, deadline time.Time, credit chan struct{}, abort chan struct{}) (uint64, error) {
	body := make([]byte, sc.BodySize)
	for i := minBodySize; i < len(body); i++ {
		body[i] = byte('a' + i%26)
	}
	var interval time.Duration
	if sc.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(sc.Producers) / float64(sc.Rate))
	}
	begin := time.Now()
	var n uint64
	for {
		now := time.Now()
		if !now.Before(deadline) {
			return n, nil
		}
		if interval > 0 {
			// Fixed rate: send each message at its scheduled time; the
			// timestamp is taken when it is actually sent.
			if due := begin.Add(time.Duration(n) * interval); due.After(now) {
				time.Sleep(due.Sub(now))
			}
		}
		select {
		case credit <- struct{}{}:
		case <-abort:
			return n, errors.New("a consumer failed")
		}
		stampBody(body, pi<<producerShift|n)
		if err := p.Send(body); err != nil {
			return n, err
		}
		n++
	}
}

func runIdle(sys system, queue string, n int, brokerPID int) (res roundResult) {
	// Two batches: the first half of the sessions, then the second. Memory
	// per session is the growth over the second batch (the marginal cost of
	// one more idle session); costs paid once, such as the runtime's caches
	// of goroutines and stacks or the first pooled broker connection, fall
	// in the first. The growth over all n sessions is MemPerSessionAll.
	first := n / 2
	heap0 := goMemory()
	goroutines0 := runtime.NumGoroutine()
	var sessions []io.Closer
	defer func() {
		for _, s := range sessions {
			if s != nil {
				_ = s.Close()
			}
		}
		time.Sleep(500 * time.Millisecond) // let the servers tear the sessions down
	}()
	open := func(count int) error {
		if s, ok := sys.(stompSystem); ok && s.inProcess {
			child, err := s.OpenIdleBatch(queue, count)
			if err == nil {
				sessions = append(sessions, child)
			}
			return err
		}
		opened, err := openIdleEach(sys, queue, count)
		sessions = append(sessions, opened...)
		return err
	}
	// Let the servers settle after each batch: consume-ok, GC, and
	// stompgate parks the writer goroutine of a session idle for 1–2 s
	// (writerIdleTimeout).
	const settle = 3 * time.Second
	if res.Err = open(first); res.Err != nil {
		return res
	}
	time.Sleep(settle)
	heap1, rss1, broker1 := goMemory(), pidRSS(0), pidRSS(brokerPID)
	if res.Err = open(n - first); res.Err != nil {
		return res
	}
	time.Sleep(settle)
	heap2, rss2, broker2 := goMemory(), pidRSS(0), pidRSS(brokerPID)
	second := float64(n - first)
	res.MemPerSession = float64(heap2-heap1) / second
	res.MemPerSessionAll = float64(heap2-heap0) / float64(n)
	res.RSSPerSession = float64(rss2-rss1) / second
	res.BrokerPerSess = float64(broker2-broker1) / second
	res.GoroutinesPerSess = float64(runtime.NumGoroutine()-goroutines0) / float64(n)
	res.Received = uint64(n)
	if memProfile != "" && strings.HasPrefix(sys.Name(), "stompgate") {
		writeHeapProfile(memProfile + "." + strings.ReplaceAll(sys.Name(), "/", "-"))
	}
	return res
}

// openIdleEach opens n idle sessions of sys, 8 at a time. On an error it
// returns the first one with the sessions opened so far (nil elsewhere).
func openIdleEach(sys system, queue string, n int) ([]io.Closer, error) {
	sessions := make([]io.Closer, n)
	var firstErr errorCell
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.get() != nil {
					return
				}
				s, err := sys.OpenIdle(queue)
				if err != nil {
					firstErr.set(fmt.Errorf("idle session %d: %w", i, err))
					return
				}
				sessions[i] = s
			}
		}()
	}
	wg.Wait()
	return sessions, firstErr.get()
}
