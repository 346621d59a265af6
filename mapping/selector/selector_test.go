package selector

import (
	"errors"
	"strings"
	"testing"
)

func TestEval(t *testing.T) {
	for _, tc := range evalCases {
		s, err := Parse(tc.sel)
		if err != nil {
			t.Errorf("Parse(%q) = %v; want a selector", tc.sel, err)
			continue
		}
		if got := s.Eval(tc.h); got != tc.want {
			t.Errorf("Parse(%q).Eval = %v; want %v", tc.sel, got, tc.want)
		}
		if got := s.Match(tc.h); got != (tc.want == True) {
			t.Errorf("Parse(%q).Match = %v; want %v", tc.sel, got, tc.want == True)
		}
		// The canonical form means the same.
		s2, err := Parse(s.String())
		if err != nil {
			t.Errorf("Parse(%q.String() = %q) = %v", tc.sel, s.String(), err)
			continue
		}
		if got := s2.Eval(tc.h); got != tc.want {
			t.Errorf("Parse(%q).Eval = %v; want %v (canonical form of %q)", s.String(), got, tc.want, tc.sel)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range badCases {
		s, err := Parse(tc.sel)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, %v; want a *SyntaxError at %d", tc.sel, s, err, tc.pos)
			continue
		}
		if se.Pos != tc.pos {
			t.Errorf("Parse(%q) error %q at %d; want position %d", tc.sel, se.Msg, se.Pos, tc.pos)
		}
	}
}

func TestSyntaxErrorText(t *testing.T) {
	_, err := Parse("(a = 1 OR b = 2")
	want := "Invalid selector at position 16: expected ')'"
	if err == nil || err.Error() != want {
		t.Fatalf("Parse error = %v; want %q", err, want)
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name string
		sel  string
		ok   bool
	}{
		{"max length", "a = '" + strings.Repeat("x", MaxLength-6) + "'", true},
		{"too long", "a = '" + strings.Repeat("x", MaxLength-5) + "'", false},
		{"max parens", strings.Repeat("(", MaxDepth) + "a" + strings.Repeat(")", MaxDepth), true},
		{"too many parens", strings.Repeat("(", MaxDepth+1) + "a" + strings.Repeat(")", MaxDepth+1), false},
		{"too many NOTs", strings.Repeat("NOT ", MaxDepth+1) + "a", false},
		{"max NOTs", strings.Repeat("NOT ", MaxDepth) + "a", true},
		{"too many signs", strings.Repeat("-", MaxDepth+1) + "1 = 1", false},
		{"deep parens, long input", strings.Repeat("(", 2000) + "a" + strings.Repeat(")", 2000), false},
		{"max IN list", "a IN (" + strings.Repeat("'',", MaxInList-1) + "'y')", true},
		{"long IN list", "a IN (" + strings.Repeat("'',", MaxInList) + "'y')", false},
		{"long AND chain", "a" + strings.Repeat(" AND a", 600), true},
	}
	for _, tc := range tests {
		_, err := Parse(tc.sel)
		if tc.ok && err != nil {
			t.Errorf("%s: Parse = %v; want ok", tc.name, err)
		}
		var se *SyntaxError
		if !tc.ok && !errors.As(err, &se) {
			t.Errorf("%s: Parse = %v; want a *SyntaxError", tc.name, err)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=1", "a = 1"},
		{"(a = 1) and ((b <> 'x'))", "a = 1 AND b <> 'x'"},
		{"a or b and c", "a OR b AND c"},
		{"(a or b) and c", "(a OR b) AND c"},
		{"not (a or b)", "NOT (a OR b)"},
		{"x - (y - z) = 1", "x - (y - z) = 1"},
		{"(x - y) - z = 1", "x - y - z = 1"},
		{"x * (y + 1) > 2.0", "x * (y + 1) > 2.0"},
		{"n like 'it''s' escape '!'", "n LIKE 'it''s' ESCAPE '!'"},
		{"n not in ('a','b')", "n NOT IN ('a', 'b')"},
		{"n not between -1 and +2", "n NOT BETWEEN -1 AND +2"},
		{"n is not null", "n IS NOT NULL"},
		{"1e3 < 0x10", "1000.0 < 16"},
		{"(a = 1) = true", "(a = 1) = TRUE"},
	}
	for _, tc := range tests {
		s, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tc.in, err)
		}
		if got := s.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q; want %q", tc.in, got, tc.want)
		}
		if s.Source() != tc.in {
			t.Errorf("Source() = %q; want %q", s.Source(), tc.in)
		}
	}
}

func TestLookup(t *testing.T) {
	s, err := Parse("weight > 2")
	if err != nil {
		t.Fatal(err)
	}
	get := Lookup(func(name string) (string, bool) {
		if name == "weight" {
			return "3", true
		}
		return "", false
	})
	if !s.Match(get) {
		t.Error("weight > 2 does not match weight:3 through a Lookup")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	for _, sel := range []string{
		"type = 'car' AND weight > 2.5 AND color IN ('red','blue')",
		"type LIKE 'c%r' AND NOT (color NOT LIKE '_e%')",
		"weight * 2 + 1 BETWEEN 6 AND 8 OR missing IS NULL",
		"color IN ('a','b','c','d','e','f','g','h','i','red')",
		"big + 1 > 0 AND price / 2 < 2",
	} {
		s, err := Parse(sel)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { s.Match(std) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times; want 0", sel, n)
		}
	}
}

var sink bool

func BenchmarkMatch(b *testing.B) {
	h := headers{"type": "car", "weight": "3", "color": "blue", "id": "ORD-2024-17"}
	for _, bc := range []struct{ name, sel string }{
		{"and-in", "type = 'car' AND weight > 2.5 AND color IN ('red','blue')"},
		{"like", "id LIKE 'ORD-%-1_' AND type NOT LIKE 'tr%'"},
	} {
		s, err := Parse(bc.sel)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = s.Match(h)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Parse("type = 'car' AND weight > 2.5 AND color IN ('red','blue')")
	}
}
