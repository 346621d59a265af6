package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stompgate/stompgate/gateway/config"
)

// gatewayProcess is stompgate run as it is deployed: the cmd/stompgate
// binary, built once per run, started with `serve --config` on
// 127.0.0.1:0, its STOMP and admin addresses read from its JSON log (as
// e2e/cluster_test.go does). Its CPU per message comes from
// /proc/<pid>/stat, apart from the benchmark's clients.
type gatewayProcess struct {
	cmd       *exec.Cmd
	addr      string // STOMP listener
	adminAddr string // admin listener with /debug/pprof
	exited    chan struct{}
}

// buildGateway builds cmd/stompgate into dir and returns the binary's path.
// The module root is found from this process's working directory upwards.
func buildGateway(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "stompgate")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go" // where scripts install it
	}
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/stompgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/stompgate: %w\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run the benchmark from the repository")
		}
		dir = parent
	}
}

// gatewayConfig is the configuration the benchmark gives a gateway: the
// defaults or configPath's, on 127.0.0.1:0, against the benchmark's
// broker, with room for the idle sessions.
func gatewayConfig(o options, configPath string, shared bool) (config.Config, error) {
	cfg := config.DefaultConfig()
	if configPath != "" {
		var err error
		if cfg, err = config.Load(configPath); err != nil {
			return cfg, err
		}
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.AMQP.URL = o.amqpURL
	cfg.AMQP.SharedConnections = shared
	if cfg.Limits.MaxConnections < o.idleSessions+100 {
		cfg.Limits.MaxConnections = o.idleSessions + 100
	}
	if cfg.Limits.MaxConnectionsPerClient < o.idleSessions+100 {
		cfg.Limits.MaxConnectionsPerClient = o.idleSessions + 100 // every client is 127.0.0.1
	}
	return cfg, nil
}

// startGatewayProcess writes the configuration to dir and starts bin with
// it and the extra environment env, with the admin listener (pprof on) on
// 127.0.0.1:0, and waits until both listen.
func startGatewayProcess(bin, dir string, cfg config.Config, name string, env []string) (*gatewayProcess, error) {
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Pprof = true
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--log-format", "json", "--log-level", "info")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	g := &gatewayProcess{cmd: cmd, exited: make(chan struct{})}
	stomp, admin := make(chan string, 1), make(chan string, 1)
	go func() {
		defer close(g.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			addr, _ := e["addr"].(string)
			switch e["msg"] {
			case "stompgate listening for STOMP connections":
				stomp <- addr
			case "stompgate admin listener: /healthz, /readyz, /metrics":
				admin <- addr
			default:
				if lvl, _ := e["level"].(string); lvl == "error" || lvl == "fatal" || lvl == "warning" {
					fmt.Fprintf(os.Stderr, "%s: %s\n", name, sc.Bytes())
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	timeout := time.After(30 * time.Second)
	for g.addr == "" || g.adminAddr == "" {
		select {
		case g.addr = <-stomp:
		case g.adminAddr = <-admin:
		case <-g.exited:
			return nil, fmt.Errorf("%s exited before listening", name)
		case <-timeout:
			_ = cmd.Process.Kill()
			<-g.exited
			return nil, fmt.Errorf("%s did not listen within 30 s", name)
		}
	}
	return g, nil
}

func (g *gatewayProcess) pid() int { return g.cmd.Process.Pid }

// stop asks the gateway to shut down (SIGTERM) and kills it after 15 s.
func (g *gatewayProcess) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

// profile fetches a CPU profile of d (whole seconds, at least 1) from the
// gateway's /debug/pprof/profile into path, and the allocations made
// meanwhile (/debug/pprof/allocs, a delta) into path.allocs. It returns at
// once; wait for the returned channel.
func (g *gatewayProcess) profile(path string, d time.Duration, progress io.Writer) <-chan struct{} {
	done := make(chan struct{})
	secs := max(1, int(math.Ceil(d.Seconds())))
	fetch := func(endpoint, file string) {
		url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", g.adminAddr, endpoint, secs)
		resp, err := http.Get(url)
		if err != nil {
			fmt.Fprintln(progress, "bench: cpuprofile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(file)
		if err != nil {
			fmt.Fprintln(progress, "bench: cpuprofile:", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			fmt.Fprintln(progress, "bench: cpuprofile:", err)
			return
		}
		fmt.Fprintln(progress, "bench: wrote", file)
	}
	go func() {
		defer close(done)
		allocs := make(chan struct{})
		go func() { defer close(allocs); fetch("allocs", path+".allocs") }()
		fetch("profile", path)
		<-allocs
	}()
	return done
}
