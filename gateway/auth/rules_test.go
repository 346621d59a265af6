package auth_test

import (
	"strings"
	"testing"

	"github.com/stompgate/stompgate/gateway/auth"
)

const (
	send = auth.VerbSend
	sub  = auth.VerbSubscribe
)

func mustRules(t testing.TB, rules ...auth.Rule) *auth.Rules {
	t.Helper()
	r, err := auth.NewRules(rules)
	if err != nil {
		t.Fatalf("NewRules: %v", err)
	}
	return r
}

func TestNewRulesErrors(t *testing.T) {
	for _, c := range []struct {
		rule auth.Rule
		want string
	}{
		{auth.Rule{Allow: []auth.Verb{"publish"}, Destination: "/queue/a"}, `unknown verb "publish"`},
		{auth.Rule{Allow: []auth.Verb{"SEND"}, Destination: "/queue/a"}, `unknown verb "SEND"`},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: "queue/a"}, "must start with '/'"},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: ""}, "must start with '/'"},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: "/topic/**"}, "'**'"},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: "/queue/{login}"}, "unknown template {login}"},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: "/queue/{claim:}"}, "unknown template {claim:}"},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: "/queue/{user"}, "unclosed '{'"},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: "/queue/{claim:a/b}"}, "unclosed '{'"},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: "/queue/user}"}, "unmatched '}'"},
		{auth.Rule{Allow: []auth.Verb{send}, Destination: "/queue/a\nb"}, "control character"},
	} {
		ok := auth.Rule{Allow: []auth.Verb{sub}, Destination: "/topic/ok"}
		_, err := auth.NewRules([]auth.Rule{ok, c.rule})
		if err == nil || !strings.Contains(err.Error(), "acl rule 1:") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewRules(%+v) = %v; want an error naming rule 1 and %q", c.rule, err, c.want)
		}
	}
}

func TestRulesCheck(t *testing.T) {
	r := mustRules(t,
		auth.Rule{Allow: []auth.Verb{sub}, Destination: "/topic/prices.*"},                // 0
		auth.Rule{Allow: []auth.Verb{send, sub}, Destination: "/queue/user.{user}"},       // 1
		auth.Rule{Allow: []auth.Verb{sub}, Destination: "/topic/tenant.{claim:tenant}.*"}, // 2
		auth.Rule{Allow: nil, Destination: "/topic/admin.*"},                              // 3: deny
		auth.Rule{Allow: []auth.Verb{send, sub}, Destination: "/topic/*"},                 // 4
		auth.Rule{Allow: []auth.Verb{send}, Destination: "/exchange/*/orders.*"},          // 5
		auth.Rule{Allow: []auth.Verb{sub}, Destination: "/amq/queue/inbox-{user}-*"},      // 6
	)
	alice := &auth.Identity{User: "alice", Subject: "alice", Claims: map[string]string{"tenant": "acme"}}
	for _, c := range []struct {
		verb    auth.Verb
		dest    string
		id      *auth.Identity
		allowed bool
		rule    int
	}{
		{sub, "/topic/prices.usd", alice, true, 0},
		{sub, "/topic/prices.usd.eur", alice, true, 0},
		{send, "/topic/prices.usd", alice, false, 0}, // first match decides
		{sub, "/topic/prices.", alice, true, 4},      // '*' needs a character; rule 4 matches "prices."
		{sub, "/topic/prices.usd/x", alice, false, -1},
		{send, "/queue/user.alice", alice, true, 1},
		{sub, "/queue/user.alice", alice, true, 1},
		{send, "/queue/user.bob", alice, false, -1},
		{send, "/queue/user.alice2", alice, false, -1},
		{send, "/queue/user.", alice, false, -1},
		{sub, "/topic/tenant.acme.news", alice, true, 2},
		{send, "/topic/tenant.acme.news", alice, false, 2},
		{sub, "/topic/tenant.other.news", alice, true, 4}, // not rule 2; rule 4 allows all of /topic/
		{sub, "/topic/admin.x", alice, false, 3},
		{send, "/topic/admin.x", alice, false, 3},
		{send, "/topic/news", alice, true, 4},
		{send, "/exchange/amq.topic/orders.new", alice, true, 5},
		{sub, "/exchange/amq.topic/orders.new", alice, false, 5},
		{send, "/exchange/amq.topic/x/orders.new", alice, false, -1},
		{send, "/exchange//orders.new", alice, false, -1},
		{sub, "/amq/queue/inbox-alice-1", alice, true, 6},
		{sub, "/amq/queue/inbox-alice-", alice, false, -1},
		{send, "/queue/other", alice, false, -1}, // default deny
		{"publish", "/topic/news", alice, false, 4},
		// Login/passcode identity: User only, no claims.
		{send, "/queue/user.bob", &auth.Identity{User: "bob"}, true, 1},
		{sub, "/topic/tenant.acme.news", &auth.Identity{User: "bob"}, true, 4},
		{send, "/queue/user.alice", nil, false, -1},
	} {
		allowed, rule := r.Check(c.verb, c.dest, c.id)
		if allowed != c.allowed || rule != c.rule {
			t.Errorf("Check(%s, %q, %+v) = %v, %d; want %v, %d", c.verb, c.dest, c.id, allowed, rule, c.allowed, c.rule)
		}
	}
}

// Template values are literal text: a hostile user name or claim cannot
// widen a pattern or reach another destination.
func TestRulesTemplateInjection(t *testing.T) {
	r := mustRules(t,
		auth.Rule{Allow: []auth.Verb{send, sub}, Destination: "/queue/user.{user}"},
		auth.Rule{Allow: []auth.Verb{send, sub}, Destination: "/exchange/{claim:tenant}/{user}"},
	)
	for _, c := range []struct {
		user, tenant, dest string
		allowed            bool
	}{
		{"*", "t", "/queue/user.alice", false},
		{"*", "t", "/queue/user.*", true}, // literal '*' only
		{"a*", "t", "/queue/user.abc", false},
		{"{user}", "t", "/queue/user.{user}", true},
		{"{user}", "t", "/queue/user.x", false},
		{"a/b", "t", "/queue/user.a/b", false}, // '/' in a value never matches
		{"../x", "t", "/queue/user../x", false},
		{"", "t", "/queue/user.", false},
		{".", "t", "/queue/user..", true},
		{"alice", "", "/exchange//alice", false}, // absent claim
		{"alice", "amq.topic/x", "/exchange/amq.topic/x/alice", false},
		{"alice", "*", "/exchange/acme/alice", false},
		{"alice", "*", "/exchange/*/alice", true},
		{"alice", "acme", "/exchange/acme/alice", true},
	} {
		id := &auth.Identity{User: c.user}
		if c.tenant != "" {
			id.Claims = map[string]string{"tenant": c.tenant}
		}
		if allowed, rule := r.Check(send, c.dest, id); allowed != c.allowed {
			t.Errorf("user %q tenant %q: Check(send, %q) = %v (rule %d); want %v", c.user, c.tenant, c.dest, allowed, rule, c.allowed)
		}
	}
}

func TestRulesEmptyAllowsAll(t *testing.T) {
	for _, r := range []*auth.Rules{nil, mustRules(t)} {
		if allowed, rule := r.Check(send, "/queue/anything", nil); !allowed || rule != -1 {
			t.Errorf("no rules: Check = %v, %d; want true, -1", allowed, rule)
		}
		if allowed, _ := auth.NewSessionChecker(r, nil).Check(sub, "/topic/x"); !allowed {
			t.Errorf("no rules: SessionChecker.Check denied")
		}
	}
}

// Stars backtrack only to the latest one, so a hostile destination against
// a many-star pattern stays linear.
func TestRulesHostileMatchIsFast(t *testing.T) {
	r := mustRules(t, auth.Rule{Allow: []auth.Verb{send}, Destination: "/queue/*a*a*a*a*a*a*a*a*a*a*b"})
	dest := "/queue/" + strings.Repeat("a", 4000)
	n := testing.AllocsPerRun(10, func() {
		if allowed, _ := r.Check(send, dest, nil); allowed {
			t.Fatalf("matched without a b")
		}
	})
	if n != 0 {
		t.Errorf("Check allocates %v times; want 0", n)
	}
	if allowed, _ := r.Check(send, dest+"b", nil); !allowed {
		t.Errorf("did not match with the b")
	}
}

func TestSessionCheckerAgreesAndCaches(t *testing.T) {
	r := mustRules(t,
		auth.Rule{Allow: []auth.Verb{sub}, Destination: "/topic/prices.*"},
		auth.Rule{Allow: []auth.Verb{send, sub}, Destination: "/queue/user.{user}"},
	)
	id := &auth.Identity{User: "alice"}
	c := auth.NewSessionChecker(r, id)
	if c.Rules() != r || c.Identity() != id {
		t.Fatalf("accessors do not return the constructor's arguments")
	}
	dests := []string{"/topic/prices.usd", "/queue/user.alice", "/queue/user.bob", "/topic/x"}
	for i := 0; i < 3; i++ { // cold, then cached
		for _, d := range dests {
			for _, v := range []auth.Verb{send, sub} {
				wa, wr := r.Check(v, d, id)
				ga, gr := c.Check(v, d)
				if ga != wa || gr != wr {
					t.Errorf("round %d: SessionChecker.Check(%s, %q) = %v, %d; Rules.Check says %v, %d", i, v, d, ga, gr, wa, wr)
				}
			}
		}
	}
	// More distinct destinations than the cache holds: still right.
	for i := 0; i < 300; i++ {
		d := "/topic/prices." + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		if allowed, rule := c.Check(sub, d); !allowed || rule != 0 {
			t.Fatalf("Check(sub, %q) = %v, %d; want true, 0", d, allowed, rule)
		}
	}
	// The cached path does not allocate.
	n := testing.AllocsPerRun(100, func() { c.Check(send, "/queue/user.alice") })
	if n != 0 {
		t.Errorf("cached Check allocates %v times; want 0", n)
	}
}

func BenchmarkSessionCheckerCached(b *testing.B) {
	r := mustRules(b,
		auth.Rule{Allow: []auth.Verb{sub}, Destination: "/topic/prices.*"},
		auth.Rule{Allow: []auth.Verb{sub}, Destination: "/topic/tenant.{claim:tenant}.*"},
		auth.Rule{Allow: []auth.Verb{send, sub}, Destination: "/queue/user.{user}"},
	)
	c := auth.NewSessionChecker(r, &auth.Identity{User: "alice", Claims: map[string]string{"tenant": "acme"}})
	c.Check(send, "/queue/user.alice")
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := c.Check(send, "/queue/user.alice"); !ok {
			b.Fatal("denied")
		}
	}
}

func BenchmarkRulesCheckUncached(b *testing.B) {
	r := mustRules(b,
		auth.Rule{Allow: []auth.Verb{sub}, Destination: "/topic/prices.*"},
		auth.Rule{Allow: []auth.Verb{sub}, Destination: "/topic/tenant.{claim:tenant}.*"},
		auth.Rule{Allow: []auth.Verb{send, sub}, Destination: "/queue/user.{user}"},
	)
	id := &auth.Identity{User: "alice", Claims: map[string]string{"tenant": "acme"}}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := r.Check(send, "/queue/user.alice", id); !ok {
			b.Fatal("denied")
		}
	}
}

// One row per pattern rule of the package doc.
func TestPatternSyntax(t *testing.T) {
	for _, c := range []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		{"/queue/a", []string{"/queue/a"}, []string{"/queue/a/", "/queue/ab", "/queue/", "/Queue/a", "/queue/A"}},
		{"/topic/prices.*", []string{"/topic/prices.usd", "/topic/prices.u.s.d", "/topic/prices.*"}, []string{"/topic/prices.", "/topic/prices", "/topic/pricesXusd", "/topic/prices.a/b"}},
		{"/queue/job-*-done", []string{"/queue/job-1-done", "/queue/job-a-b-done", "/queue/job--done-done"}, []string{"/queue/job--done", "/queue/job-", "/queue/job-1-don", "/queue/job-1/x-done"}},
		{"/queue/*x", []string{"/queue/ax", "/queue/xx", "/queue/axx"}, []string{"/queue/x", "/queue/", "/queue/a", "/queue/a/x"}},
		{"/exchange/*/*", []string{"/exchange/amq.topic/a.b"}, []string{"/exchange/amq.topic", "/exchange/amq.topic/", "/exchange//a", "/exchange/a/b/c"}},
		{"/*/a", []string{"/queue/a", "/topic/a"}, []string{"/a", "//a", "/queue/b/a"}},
		{"/queue/user.{user}", []string{"/queue/user.alice"}, []string{"/queue/user.", "/queue/user.alicex", "/queue/user.alic", "/queue/user.bob"}},
		{"/queue/{user}*", []string{"/queue/alice1"}, []string{"/queue/alice", "/queue/bob1"}},
		{"/queue/{claim:tenant}.{user}", []string{"/queue/acme.alice"}, []string{"/queue/acme.", "/queue/.alice", "/queue/other.alice"}},
		{"/queue/{claim:missing}", nil, []string{"/queue/", "/queue/x", "/queue/{claim:missing}"}},
	} {
		r := mustRules(t, auth.Rule{Allow: []auth.Verb{send}, Destination: c.pattern})
		id := &auth.Identity{User: "alice", Claims: map[string]string{"tenant": "acme"}}
		for _, d := range c.match {
			if ok, rule := r.Check(send, d, id); !ok || rule != 0 {
				t.Errorf("pattern %q does not match %q", c.pattern, d)
			}
		}
		for _, d := range c.nomatch {
			if _, rule := r.Check(send, d, id); rule != -1 {
				t.Errorf("pattern %q matches %q", c.pattern, d)
			}
		}
	}
}
