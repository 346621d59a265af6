package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/stompgate/stompgate/gateway/config"
)

// SIGHUP re-reads the config file and hands its acl section over; a file
// that no longer loads is logged and hands nothing over.
func TestSIGHUPReloadsACLFromTheConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stompgate.yaml")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("acl:\n  rules:\n    - {allow: [send], destination: \"/queue/a\"}\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log, hook := logtest.NewNullLogger()
	reloads := reloadOnSIGHUP(ctx, path, cfg, log)

	write("acl:\n  rules:\n    - {allow: [subscribe], destination: \"/topic/b.*\"}\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case acl := <-reloads:
		if len(acl.Rules) != 1 || acl.Rules[0].Destination != "/topic/b.*" || acl.Rules[0].Allow[0] != "subscribe" {
			t.Fatalf("reloaded acl %+v, want the file's new rule", acl)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload after SIGHUP")
	}

	write("acl:\n  rules:\n    - {allow: [publish], destination: \"/queue/a\"}\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case acl := <-reloads:
		t.Fatalf("a file that does not validate was reloaded: %+v", acl)
	case <-time.After(300 * time.Millisecond):
	}
	if e := hook.LastEntry(); e == nil || e.Message != "SIGHUP: the config file does not load; nothing reloaded" {
		t.Fatalf("last log entry %v, want the refused reload", e)
	}
}
