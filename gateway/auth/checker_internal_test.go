package auth

import (
	"strconv"
	"testing"
)

// The cache is bounded: it never holds more than sessionCacheSize entries,
// and a repeated destination is answered from it.
func TestSessionCheckerCacheBound(t *testing.T) {
	r, err := NewRules([]Rule{{Allow: []Verb{VerbSend}, Destination: "/queue/*"}})
	if err != nil {
		t.Fatal(err)
	}
	c := NewSessionChecker(r, &Identity{User: "u"})
	c.Check(VerbSend, "/queue/a")
	if _, ok := c.cache[checkKey{VerbSend, "/queue/a"}]; !ok || len(c.cache) != 1 {
		t.Fatalf("cache after one check = %v; want /queue/a only", c.cache)
	}
	c.Check(VerbSubscribe, "/queue/a")
	if res := c.cache[checkKey{VerbSubscribe, "/queue/a"}]; res.allowed || res.rule != 0 {
		t.Fatalf("cached subscribe = %+v; want denied by rule 0", res)
	}
	for i := 0; i < 3*sessionCacheSize; i++ {
		c.Check(VerbSend, "/queue/q"+strconv.Itoa(i))
		if len(c.cache) > sessionCacheSize {
			t.Fatalf("cache holds %d entries; bound is %d", len(c.cache), sessionCacheSize)
		}
	}
	// Uncached path through a cache that has been reset.
	if ok, rule := c.Check(VerbSend, "/queue/a"); !ok || rule != 0 {
		t.Fatalf("Check after resets = %v, %d", ok, rule)
	}
}
