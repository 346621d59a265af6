package selector

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Getter gives a header's value by name. ok is false for a missing header,
// which a selector sees as NULL.
type Getter interface {
	Get(name string) (value string, ok bool)
}

// Lookup adapts a function to Getter without allocating.
type Lookup func(name string) (value string, ok bool)

// Get calls f.
func (f Lookup) Get(name string) (string, bool) { return f(name) }

// Result is a selector's three-valued outcome.
type Result int8

// The results. A message matches only on True.
const (
	Unknown Result = iota
	False
	True
)

// String returns TRUE, FALSE or UNKNOWN.
func (r Result) String() string {
	switch r {
	case True:
		return "TRUE"
	case False:
		return "FALSE"
	}
	return "UNKNOWN"
}

type kind uint8

const (
	kNull  kind = iota
	kBool       // b
	kInt        // i
	kFloat      // f
	kStr        // s, from a string literal
	kRaw        // s, a header value: typeless until it meets a typed operand
)

// value is one intermediate result, passed by value so evaluation does not
// box numbers. A boolean expression that is UNKNOWN yields kNull.
type value struct {
	k kind
	b bool
	i int64
	f float64
	s string
}

var (
	nullV  = value{}
	trueV  = value{k: kBool, b: true}
	falseV = value{k: kBool}
)

func boolV(b bool) value {
	if b {
		return trueV
	}
	return falseV
}

func (v value) float() float64 {
	if v.k == kInt {
		return float64(v.i)
	}
	return v.f
}

// truth is a value as the operand of AND, OR, NOT or the whole selector.
// A header value there is FALSE whatever it says, as in ActiveMQ (its
// boolean cast of a non-Boolean property); NULL is UNKNOWN.
func truth(v value) Result {
	switch v.k {
	case kBool:
		if v.b {
			return True
		}
		return False
	case kRaw, kStr:
		return False
	}
	return Unknown
}

func resultV(r Result) value {
	switch r {
	case True:
		return trueV
	case False:
		return falseV
	}
	return nullV
}

// parseNumber reads a header value as a number: [+-]digits[.digits][e[+-]digits]
// or [+-].digits... It checks the syntax first so that strconv never builds an
// error (which would allocate).
func parseNumber(s string) (value, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	d0 := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	nd := i - d0
	isFloat := false
	if i < len(s) && s[i] == '.' {
		isFloat = true
		i++
		f0 := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		nd += i - f0
	}
	if nd == 0 {
		return nullV, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		isFloat = true
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		e0 := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == e0 {
			return nullV, false
		}
	}
	if i != len(s) {
		return nullV, false
	}
	if !isFloat && i-d0 <= 19 { // beyond 19 digits never fits in int64
		n, err := strconv.ParseInt(s, 10, 64) // an overflow falls back to float64
		if err == nil {
			return value{k: kInt, i: n}, true
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return nullV, false
	}
	return value{k: kFloat, f: f}, true
}

// asNumber is v as an arithmetic operand.
func asNumber(v value) (value, bool) {
	switch v.k {
	case kInt, kFloat:
		return v, true
	case kRaw:
		return parseNumber(v.s)
	}
	return nullV, false
}

// node is one compiled expression.
type node interface {
	eval(g Getter) value
	prec() int                // for String: how tightly the node binds
	write(b *strings.Builder) // canonical source
}

// Precedence levels, loosest first.
const (
	precOr = iota + 1
	precAnd
	precNot
	precCmp
	precAdd
	precMul
	precUnary
	precPrimary
)

func writeChild(b *strings.Builder, n node, min int) {
	if n.prec() < min {
		b.WriteByte('(')
		n.write(b)
		b.WriteByte(')')
		return
	}
	n.write(b)
}

// litNode is a literal.
type litNode struct{ v value }

func (n *litNode) eval(Getter) value { return n.v }
func (n *litNode) prec() int         { return precPrimary }
func (n *litNode) write(b *strings.Builder) {
	switch n.v.k {
	case kNull:
		b.WriteString("NULL")
	case kBool:
		if n.v.b {
			b.WriteString("TRUE")
		} else {
			b.WriteString("FALSE")
		}
	case kInt:
		b.WriteString(strconv.FormatInt(n.v.i, 10))
	case kFloat:
		s := strconv.FormatFloat(n.v.f, 'g', -1, 64)
		b.WriteString(s)
		if !strings.ContainsAny(s, ".e") {
			b.WriteString(".0")
		}
	case kStr:
		writeString(b, n.v.s)
	}
}

func writeString(b *strings.Builder, s string) {
	b.WriteByte('\'')
	b.WriteString(strings.ReplaceAll(s, "'", "''"))
	b.WriteByte('\'')
}

// identNode is a header name.
type identNode struct{ name string }

func (n *identNode) eval(g Getter) value {
	s, ok := g.Get(n.name)
	if !ok {
		return nullV
	}
	return value{k: kRaw, s: s}
}
func (n *identNode) prec() int                { return precPrimary }
func (n *identNode) write(b *strings.Builder) { b.WriteString(n.name) }

// notNode is NOT x.
type notNode struct{ x node }

func (n *notNode) eval(g Getter) value {
	switch truth(n.x.eval(g)) {
	case True:
		return falseV
	case False:
		return trueV
	}
	return nullV
}
func (n *notNode) prec() int { return precNot }
func (n *notNode) write(b *strings.Builder) {
	b.WriteString("NOT ")
	writeChild(b, n.x, precNot)
}

// logicNode is l AND r or l OR r.
type logicNode struct {
	or   bool
	l, r node
}

func (n *logicNode) eval(g Getter) value {
	l := truth(n.l.eval(g))
	if n.or {
		if l == True {
			return trueV
		}
		r := truth(n.r.eval(g))
		if r == True {
			return trueV
		}
		if l == False && r == False {
			return falseV
		}
		return nullV
	}
	if l == False {
		return falseV
	}
	r := truth(n.r.eval(g))
	if r == False {
		return falseV
	}
	if l == True && r == True {
		return trueV
	}
	return nullV
}
func (n *logicNode) prec() int {
	if n.or {
		return precOr
	}
	return precAnd
}
func (n *logicNode) write(b *strings.Builder) {
	p := n.prec()
	writeChild(b, n.l, p)
	if n.or {
		b.WriteString(" OR ")
	} else {
		b.WriteString(" AND ")
	}
	writeChild(b, n.r, p+1)
}

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var cmpText = [...]string{"=", "<>", "<", "<=", ">", ">="}

// cmpNode is a comparison.
type cmpNode struct {
	op   cmpOp
	l, r node
}

func (n *cmpNode) eval(g Getter) value {
	return compare(n.op, n.l.eval(g), n.r.eval(g))
}
func (n *cmpNode) prec() int { return precCmp }
func (n *cmpNode) write(b *strings.Builder) {
	writeChild(b, n.l, precAdd)
	b.WriteByte(' ')
	b.WriteString(cmpText[n.op])
	b.WriteByte(' ')
	writeChild(b, n.r, precAdd)
}

// compare applies op with the coercion rules of the package doc.
func compare(op cmpOp, a, b value) value {
	if a.k == kNull || b.k == kNull {
		return nullV
	}
	// A string (header value or literal) takes the type of a number or
	// boolean operand (ActiveMQ's convert_string_expressions).
	// A string that does not convert compares FALSE; <> is NOT (=) in
	// ActiveMQ (ComparisonExpression.createNotEqual), so it is TRUE then
	// (n <> 2 matches n:abc on ActiveMQ 5.17.2).
	if isString(a.k) && !isString(b.k) {
		var ok bool
		if a, ok = coerce(a.s, b.k); !ok {
			return boolV(op == opNe)
		}
	} else if isString(b.k) && !isString(a.k) {
		var ok bool
		if b, ok = coerce(b.s, a.k); !ok {
			return boolV(op == opNe)
		}
	}
	var c int
	switch {
	case (a.k == kInt || a.k == kFloat) && (b.k == kInt || b.k == kFloat):
		c = cmpNumbers(a, b)
	case (a.k == kStr || a.k == kRaw) && (b.k == kStr || b.k == kRaw):
		if op == opEq || op == opNe {
			return boolV((a.s == b.s) == (op == opEq))
		}
		c = strings.Compare(a.s, b.s) // ActiveMQ: bytewise, even for "9" < "10"
	case a.k == kBool && b.k == kBool:
		switch op {
		case opEq:
			return boolV(a.b == b.b)
		case opNe:
			return boolV(a.b != b.b)
		}
		return falseV
	default:
		return falseV // JMS 3.8.1.2: non-like types compare FALSE
	}
	switch op {
	case opEq:
		return boolV(c == 0)
	case opNe:
		return boolV(c != 0)
	case opLt:
		return boolV(c < 0)
	case opLe:
		return boolV(c <= 0)
	case opGt:
		return boolV(c > 0)
	}
	return boolV(c >= 0)
}

func isString(k kind) bool { return k == kStr || k == kRaw }

// coerce reads a string as kind k the way ActiveMQ does: Long.valueOf for
// an exact number, Double.valueOf for an approximate one, Boolean.valueOf
// for a boolean (which never fails: anything but "true" is false).
func coerce(s string, k kind) (value, bool) {
	switch k {
	case kBool:
		return boolV(strings.EqualFold(s, "true")), true
	case kInt:
		return parseLong(s)
	case kFloat:
		return parseDouble(s)
	}
	return nullV, false
}

// parseLong is Java's Long.valueOf: an optional sign and decimal digits.
func parseLong(s string) (value, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i == len(s) || len(s)-i > 19 {
		return nullV, false
	}
	for j := i; j < len(s); j++ {
		if !isDigit(s[j]) {
			return nullV, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nullV, false
	}
	return value{k: kInt, i: n}, true
}

// parseDouble is Java's Double.valueOf for decimal input: surrounding
// whitespace and control characters are ignored and an f, F, d or D suffix
// is allowed. Hexadecimal floats, NaN and Infinity are not accepted.
func parseDouble(s string) (value, bool) {
	for len(s) > 0 && s[0] <= ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] <= ' ' {
		s = s[:len(s)-1]
	}
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'f', 'F', 'd', 'D':
			s = s[:n-1]
		}
	}
	v, ok := parseNumber(s)
	if !ok {
		return nullV, false
	}
	return value{k: kFloat, f: v.float()}, true
}

func cmpNumbers(a, b value) int {
	if a.k == kInt && b.k == kInt {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	x, y := a.float(), b.float()
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// arithNode is l + - * / r.
type arithNode struct {
	op   byte
	l, r node
}

func (n *arithNode) eval(g Getter) value {
	a, ok := asNumber(n.l.eval(g))
	if !ok {
		return nullV
	}
	b, ok := asNumber(n.r.eval(g))
	if !ok {
		return nullV
	}
	if a.k == kInt && b.k == kInt && n.op != '/' { // ActiveMQ divides in double
		if v, ok := intArith(n.op, a.i, b.i); ok {
			return v
		}
	}
	x, y := a.float(), b.float()
	var f float64
	switch n.op {
	case '+':
		f = x + y
	case '-':
		f = x - y
	case '*':
		f = x * y
	default:
		if y == 0 {
			return nullV
		}
		f = x / y
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nullV
	}
	return value{k: kFloat, f: f}
}

// intArith is exact int64 + - *; ok is false on overflow.
func intArith(op byte, x, y int64) (value, bool) {
	var r int64
	switch op {
	case '+':
		r = x + y
		if (r > x) != (y > 0) {
			return nullV, false
		}
	case '-':
		r = x - y
		if (r < x) != (y > 0) {
			return nullV, false
		}
	default:
		if x == 0 || y == 0 {
			return value{k: kInt}, true
		}
		r = x * y
		if r/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
			return nullV, false
		}
	}
	return value{k: kInt, i: r}, true
}

func (n *arithNode) prec() int {
	if n.op == '+' || n.op == '-' {
		return precAdd
	}
	return precMul
}
func (n *arithNode) write(b *strings.Builder) {
	p := n.prec()
	writeChild(b, n.l, p)
	b.WriteByte(' ')
	b.WriteByte(n.op)
	b.WriteByte(' ')
	writeChild(b, n.r, p+1)
}

// signNode is unary + or -.
type signNode struct {
	neg bool
	x   node
}

func (n *signNode) eval(g Getter) value {
	v, ok := asNumber(n.x.eval(g))
	if !ok || !n.neg {
		return v
	}
	if v.k == kInt {
		if v.i == math.MinInt64 {
			return value{k: kFloat, f: -float64(v.i)}
		}
		return value{k: kInt, i: -v.i}
	}
	return value{k: kFloat, f: -v.f}
}
func (n *signNode) prec() int { return precUnary }
func (n *signNode) write(b *strings.Builder) {
	if n.neg {
		b.WriteByte('-')
	} else {
		b.WriteByte('+')
	}
	writeChild(b, n.x, precUnary)
}

// betweenNode is x [NOT] BETWEEN lo AND hi.
type betweenNode struct {
	not       bool
	x, lo, hi node
}

func (n *betweenNode) eval(g Getter) value {
	x := n.x.eval(g)
	if n.not {
		// ActiveMQ builds NOT BETWEEN as x < lo OR x > hi, which differs
		// from NOT (x BETWEEN lo AND hi) when a comparison is FALSE for a
		// string that does not convert (n NOT BETWEEN 2 AND 3 does not
		// match n:abc on ActiveMQ 5.17.2).
		lt := truth(compare(opLt, x, n.lo.eval(g)))
		if lt == True {
			return resultV(True)
		}
		gt := truth(compare(opGt, x, n.hi.eval(g)))
		switch {
		case gt == True:
			return resultV(True)
		case lt == False && gt == False:
			return resultV(False)
		}
		return resultV(Unknown)
	}
	ge := truth(compare(opGe, x, n.lo.eval(g)))
	var r Result
	if ge == False {
		r = False
	} else {
		le := truth(compare(opLe, x, n.hi.eval(g)))
		switch {
		case le == False:
			r = False
		case ge == True && le == True:
			r = True
		}
	}
	return resultV(r)
}
func (n *betweenNode) prec() int { return precCmp }
func (n *betweenNode) write(b *strings.Builder) {
	writeChild(b, n.x, precAdd)
	if n.not {
		b.WriteString(" NOT")
	}
	b.WriteString(" BETWEEN ")
	writeChild(b, n.lo, precAdd)
	b.WriteString(" AND ")
	writeChild(b, n.hi, precAdd)
}

// inNode is x [NOT] IN (list).
type inNode struct {
	not  bool
	x    node
	list []string
	set  map[string]struct{} // for long lists
}

const inSetThreshold = 8

func (n *inNode) eval(g Getter) value {
	v := n.x.eval(g)
	switch v.k {
	case kNull:
		return nullV
	case kStr, kRaw:
	default:
		return falseV
	}
	found := false
	if n.set != nil {
		_, found = n.set[v.s]
	} else {
		for _, s := range n.list {
			if s == v.s {
				found = true
				break
			}
		}
	}
	return boolV(found != n.not)
}
func (n *inNode) prec() int { return precCmp }
func (n *inNode) write(b *strings.Builder) {
	writeChild(b, n.x, precAdd)
	if n.not {
		b.WriteString(" NOT")
	}
	b.WriteString(" IN (")
	for i, s := range n.list {
		if i > 0 {
			b.WriteString(", ")
		}
		writeString(b, s)
	}
	b.WriteByte(')')
}

type likeKind uint8

const (
	likeLit likeKind = iota // one literal rune
	likeOne                 // _
	likeAny                 // %
)

type likeTok struct {
	k likeKind
	r rune
}

// likeNode is x [NOT] LIKE pattern [ESCAPE esc], with the pattern compiled.
type likeNode struct {
	not     bool
	x       node
	pattern string
	escape  string // "" without ESCAPE
	toks    []likeTok
}

func compileLike(p string, esc rune, hasEsc bool) []likeTok {
	var toks []likeTok
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRuneInString(p[i:])
		i += size
		switch {
		case hasEsc && r == esc && i < len(p):
			r, size = utf8.DecodeRuneInString(p[i:])
			i += size
			toks = append(toks, likeTok{k: likeLit, r: r})
		case r == '%':
			if len(toks) == 0 || toks[len(toks)-1].k != likeAny {
				toks = append(toks, likeTok{k: likeAny})
			}
		case r == '_':
			toks = append(toks, likeTok{k: likeOne})
		default:
			toks = append(toks, likeTok{k: likeLit, r: r})
		}
	}
	return toks
}

// likeMatch matches s against toks: a two-pointer walk that backtracks only
// to the last %, so it is O(len(s) × len(toks)) at worst.
func likeMatch(toks []likeTok, s string) bool {
	i, p := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if p < len(toks) {
			t := toks[p]
			if t.k == likeOne || (t.k == likeLit && t.r == r) {
				i += size
				p++
				continue
			}
			if t.k == likeAny {
				starP, starI = p, i
				p++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		_, size = utf8.DecodeRuneInString(s[starI:])
		starI += size
		i, p = starI, starP+1
	}
	for p < len(toks) && toks[p].k == likeAny {
		p++
	}
	return p == len(toks)
}

func (n *likeNode) eval(g Getter) value {
	v := n.x.eval(g)
	switch v.k {
	case kNull:
		return nullV
	case kStr, kRaw:
		return boolV(likeMatch(n.toks, v.s) != n.not)
	}
	return falseV
}
func (n *likeNode) prec() int { return precCmp }
func (n *likeNode) write(b *strings.Builder) {
	writeChild(b, n.x, precAdd)
	if n.not {
		b.WriteString(" NOT")
	}
	b.WriteString(" LIKE ")
	writeString(b, n.pattern)
	if n.escape != "" {
		b.WriteString(" ESCAPE ")
		writeString(b, n.escape)
	}
}

// isNullNode is x IS [NOT] NULL.
type isNullNode struct {
	not bool
	x   node
}

func (n *isNullNode) eval(g Getter) value {
	return boolV((n.x.eval(g).k == kNull) != n.not)
}
func (n *isNullNode) prec() int { return precCmp }
func (n *isNullNode) write(b *strings.Builder) {
	writeChild(b, n.x, precAdd)
	if n.not {
		b.WriteString(" IS NOT NULL")
	} else {
		b.WriteString(" IS NULL")
	}
}
