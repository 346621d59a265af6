//go:build e2e && soak

package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestClusterSoak is make soak: the fault scenario of
// TestClusterNodeLossLosesNothingReceipted for STOMPGATE_SOAK_DURATION
// (default 10 minutes). Every round SIGKILLs a node (the one most
// sessions use), starts it again, SIGKILLs a replica, starts it again and
// cuts the other replica's broker links; rounds go on until the duration
// is reached, and at least 5 nodes are killed. It prints the figures the
// README's "Running more than one" shows.
func TestClusterSoak(t *testing.T) {
	d := 10 * time.Minute
	if v := os.Getenv("STOMPGATE_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("STOMPGATE_SOAK_DURATION=%q: %v", v, err)
		}
	}
	const pause = 20 * time.Second
	// A round is five pauses plus a node's restart (about 10 s here).
	round := 5*pause + 10*time.Second
	rounds := max(5, int((d+round-1)/round))
	res := runClusterFaults(t, faultSchedule{warmup: 10 * time.Second, rounds: rounds, pause: pause})
	fmt.Printf("soak (%d rounds, %v pause): %s\n", rounds, pause, res)
	res.check(t, 5)
	if res.elapsed < d {
		t.Errorf("the run took %v, want at least %v", res.elapsed, d)
	}
}
