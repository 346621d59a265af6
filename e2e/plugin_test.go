//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The reference implementation: RabbitMQ's own STOMP plugin (rabbitmq_stomp,
// "the plugin" in semantics.md), on the same broker as the gateway. Owned by
// the differential tests (differential_test.go).
//
// Environment:
//
//	STOMPGATE_E2E_PLUGIN  host:port of the plugin's STOMP listener; when
//	                      unset, ../scripts/ensure-stomp-plugin.sh enables
//	                      the plugin on a loopback port and prints it.

var pluginOnce struct {
	sync.Once
	addr string
	err  string
}

// pluginAddr returns the plugin's STOMP address, enabling the plugin once
// per test binary if needed. Failing to get it fails the test: the
// differential tests are part of the suite, not optional.
func pluginAddr(t testing.TB) string {
	t.Helper()
	pluginOnce.Do(func() {
		if a := os.Getenv("STOMPGATE_E2E_PLUGIN"); a != "" {
			pluginOnce.addr = a
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "../scripts/ensure-stomp-plugin.sh")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				pluginOnce.err = "scripts/ensure-stomp-plugin.sh: " + err.Error() + ": " + strings.TrimSpace(stderr.String())
				return
			}
			lines := strings.Fields(stdout.String())
			if len(lines) == 0 {
				pluginOnce.err = "scripts/ensure-stomp-plugin.sh printed no address; stderr: " + stderr.String()
				return
			}
			pluginOnce.addr = lines[len(lines)-1]
		}
		c, err := net.DialTimeout("tcp", pluginOnce.addr, 3*time.Second)
		if err != nil {
			pluginOnce.err = "the STOMP plugin at " + pluginOnce.addr + " is not reachable: " + err.Error()
			return
		}
		_ = c.Close()
	})
	if pluginOnce.err != "" {
		t.Fatalf("RabbitMQ's STOMP plugin is needed as the reference (semantics.md): %s", pluginOnce.err)
	}
	return pluginOnce.addr
}
