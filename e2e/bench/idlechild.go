package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Idle sessions of an in-process gateway are opened by a child process (this
// command with -idle-child), so that each session costs this process one
// descriptor, not two: a 10,000-session run fits a 20,000-descriptor limit,
// and this process's memory holds the gateway's side only.

// idleChildTimeout bounds how long the child may take to subscribe them all
// (shared-connection mode authenticates every CONNECT with the broker).
const idleChildTimeout = 10 * time.Minute

// idleChild is the parent's handle on the child holding the sessions;
// Close ends it, which closes them all.
type idleChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func (c *idleChild) Close() error {
	_ = c.stdin.Close()
	return c.cmd.Wait()
}

// OpenIdleBatch opens n idle subscribed sessions to queue in a child process.
func (s stompSystem) OpenIdleBatch(queue string, n int) (io.Closer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-idle-child", strings.Join([]string{s.addr, queue, strconv.Itoa(n)}, ","))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	child := &idleChild{cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case l := <-line:
		if l == "ready" {
			return child, nil
		}
		_ = child.Close()
		return nil, fmt.Errorf("idle sessions: %s", strings.TrimPrefix(l, "error: "))
	case <-time.After(idleChildTimeout):
		_ = cmd.Process.Kill()
		_ = child.Close()
		return nil, fmt.Errorf("idle sessions: not subscribed after %s", idleChildTimeout)
	}
}

// runIdleChild is the child: it opens the sessions (openIdleEach), says
// "ready" (or "error: ...") on stdout and holds them until stdin closes.
func runIdleChild(spec string) int {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		fmt.Println("error: -idle-child wants addr,queue,n")
		return 2
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		fmt.Println("error: -idle-child n:", err)
		return 2
	}
	sys := stompSystem{name: "idle-child", addr: parts[0], client: "raw"}
	sessions, err := openIdleEach(sys, parts[1], n)
	if err != nil {
		fmt.Println("error:", strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	var errs []error
	for _, s := range sessions {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if errors.Join(errs...) != nil {
		return 1
	}
	return 0
}
