package auth

import (
	"fmt"
	"strings"
)

// Verb is what a client does to a destination.
type Verb string

// The verbs a rule can allow.
const (
	VerbSend      Verb = "send"
	VerbSubscribe Verb = "subscribe"
)

func (v Verb) bit() uint8 {
	switch v {
	case VerbSend:
		return 1
	case VerbSubscribe:
		return 2
	}
	return 0
}

// Rule is one acl.rules entry, as configured.
type Rule struct {
	// Allow lists the verbs the rule allows on a matching destination.
	// An empty list makes a deny rule: it matches and allows nothing.
	Allow []Verb
	// Destination is the pattern; see the package doc for its syntax.
	Destination string
}

// Rules is a compiled, immutable rule list. Safe for concurrent use; a
// reload builds a new one.
type Rules struct {
	rules []compiledRule
}

type compiledRule struct {
	allow uint8
	pat   [][]segment
}

type segKind uint8

const (
	segLiteral segKind = iota
	segStar
	segUser
	segClaim
)

// segment is one piece of a pattern: literal text, '*', {user} or
// {claim:name} (name in text).
type segment struct {
	kind segKind
	text string
}

// NewRules compiles rules; an error names the rule by index (0-based, in
// configuration order) and says what is wrong. A nil or empty list gives
// Rules that allow everything.
func NewRules(rules []Rule) (*Rules, error) {
	out := &Rules{rules: make([]compiledRule, 0, len(rules))}
	for i, r := range rules {
		var cr compiledRule
		for _, v := range r.Allow {
			b := v.bit()
			if b == 0 {
				return nil, fmt.Errorf("acl rule %d: unknown verb %q (want %q or %q)", i, v, VerbSend, VerbSubscribe)
			}
			cr.allow |= b
		}
		pat, err := compilePattern(r.Destination)
		if err != nil {
			return nil, fmt.Errorf("acl rule %d: destination %q: %w", i, r.Destination, err)
		}
		cr.pat = pat
		out.rules = append(out.rules, cr)
	}
	return out, nil
}

// compilePattern splits p at '/' into path components and compiles each.
// Only literal text can match a '/', so the i-th '/' of a destination always
// meets the i-th '/' of the pattern, and components match independently.
func compilePattern(p string) ([][]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("must start with '/'")
	}
	var comps [][]segment
	off := 0
	for _, c := range strings.Split(p, "/") {
		segs, err := compileComponent(c, off)
		if err != nil {
			return nil, err
		}
		comps = append(comps, segs)
		off += len(c) + 1
	}
	return comps, nil
}

// compileComponent compiles one '/'-free piece of a pattern; off is its
// offset in the pattern, for messages.
func compileComponent(p string, off int) ([]segment, error) {
	var segs []segment
	lit := 0 // start of the pending literal
	flush := func(end int) {
		if end > lit {
			segs = append(segs, segment{kind: segLiteral, text: p[lit:end]})
		}
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("control character at offset %d", off+i)
		case c == '*':
			if i+1 < len(p) && p[i+1] == '*' {
				return nil, fmt.Errorf("'**' at offset %d is not supported", off+i)
			}
			flush(i)
			segs = append(segs, segment{kind: segStar})
			lit = i + 1
		case c == '}':
			return nil, fmt.Errorf("unmatched '}' at offset %d", off+i)
		case c == '{':
			end := strings.IndexByte(p[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed '{' at offset %d", off+i)
			}
			name := p[i+1 : i+end]
			var s segment
			switch {
			case name == "user":
				s = segment{kind: segUser}
			case strings.HasPrefix(name, "claim:") && len(name) > len("claim:") && !strings.ContainsAny(name, "{*"):
				s = segment{kind: segClaim, text: name[len("claim:"):]}
			default:
				return nil, fmt.Errorf("unknown template {%s} at offset %d (want {user} or {claim:NAME})", name, off+i)
			}
			flush(i)
			segs = append(segs, s)
			i += end
			lit = i + 1
		}
	}
	flush(len(p))
	return segs, nil
}

// Len is the number of rules.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.rules)
}

// Check decides whether id may do verb on destination. It returns the
// decision and the index of the deciding rule: the first rule whose pattern
// matches destination. ruleIndex is -1 when no rule matches (denied) or
// when there are no rules (allowed). id may be nil (no templates match).
func (r *Rules) Check(verb Verb, destination string, id *Identity) (allowed bool, ruleIndex int) {
	if r.Len() == 0 {
		return true, -1
	}
	b := verb.bit()
	for i := range r.rules {
		cr := &r.rules[i]
		if match(cr.pat, destination, id) {
			return b != 0 && cr.allow&b != 0, i
		}
	}
	return false, -1
}

// match reports whether the pattern components comps match all of s.
func match(comps [][]segment, s string, id *Identity) bool {
	for i, segs := range comps {
		part := s
		if i < len(comps)-1 {
			j := strings.IndexByte(s, '/')
			if j < 0 {
				return false
			}
			part, s = s[:j], s[j+1:]
		} else if strings.IndexByte(s, '/') >= 0 {
			return false
		}
		if !matchComponent(segs, part, id) {
			return false
		}
	}
	return true
}

// value is what a segment must match literally: its text, or the template's
// value from id. ok is false for a template value that is empty, absent or
// holds a '/': such a template never matches, so it can neither widen a
// pattern nor cross into another path component.
func (seg *segment) value(id *Identity) (v string, ok bool) {
	switch seg.kind {
	case segLiteral:
		return seg.text, true
	case segUser:
		if id != nil {
			v = id.User
		}
	case segClaim:
		if id != nil {
			v = id.Claims[seg.text]
		}
	}
	return v, v != "" && strings.IndexByte(v, '/') < 0
}

// matchComponent matches one '/'-free component. It is the classic glob
// matcher that backtracks only to the latest star, O(len(segs)*len(s)) even
// for hostile input; a star takes one character at once and then any run.
func matchComponent(segs []segment, s string, id *Identity) bool {
	si, ti := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti < len(segs) {
			seg := &segs[ti]
			if seg.kind == segStar {
				if si < len(s) {
					si++
					starTi, starSi = ti, si
					ti++
					continue
				}
			} else {
				v, ok := seg.value(id)
				if !ok {
					return false
				}
				if strings.HasPrefix(s[si:], v) {
					si += len(v)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the latest star take one more character.
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		starSi++
		si, ti = starSi, starTi+1
	}
}
