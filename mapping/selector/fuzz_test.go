package selector

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics and returns either a selector or
// a *SyntaxError with a position inside the input (or just past it), that
// evaluating a parsed selector never panics, and that the canonical form
// re-parses to the same canonical form.
func FuzzParse(f *testing.F) {
	for _, tc := range evalCases {
		f.Add(tc.sel)
	}
	for _, tc := range badCases {
		f.Add(tc.sel)
	}
	hs := []headers{std, {}, {"a": "1", "b": "x", "c": "true", "x": "-0", "y": "1e308", "z": "%_"}}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T %v; want *SyntaxError", src, err, err)
			}
			if se.Pos < 1 || (se.Pos > len(src)+1 && se.Pos != MaxLength+1) {
				t.Fatalf("Parse(%q) error position %d outside 1..%d", src, se.Pos, len(src)+1)
			}
			return
		}
		for _, h := range hs {
			_ = s.Eval(h)
		}
		c := s.String()
		s2, err := Parse(c)
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && len(c) > MaxLength {
				return // the canonical form may be longer than the source
			}
			t.Fatalf("Parse(%q) ok, but its canonical form %q: %v", src, c, err)
		}
		if c2 := s2.String(); c2 != c {
			t.Fatalf("canonical form of %q is %q, which re-parses to %q", src, c, c2)
		}
		for _, h := range hs {
			if a, b := s.Eval(h), s2.Eval(h); a != b {
				t.Fatalf("Parse(%q).Eval = %v but its canonical form %q gives %v", src, a, c, b)
			}
		}
	})
}
