package selector

import (
	"strings"
	"unicode/utf8"
)

// Selector is a parsed selector. It is immutable and safe for concurrent use.
type Selector struct {
	src  string
	root node
}

// static types the parser tracks to refuse selectors JMS calls invalid,
// such as 'a' AND TRUE or 'x' + 1.
type stype uint8

const (
	sAny  stype = iota // an identifier or NULL: known only at Match
	sBool              // comparisons, logic, TRUE, FALSE
	sNum               // number literals and arithmetic
	sStr               // string literals
)

type parser struct {
	lex   lexer
	tok   token
	depth int
}

// Parse compiles src. Errors are *SyntaxError.
func Parse(src string) (*Selector, error) {
	if len(src) > MaxLength {
		return nil, &SyntaxError{Pos: MaxLength + 1, Msg: "selector longer than 4096 bytes"}
	}
	p := &parser{lex: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, p.errHere("empty selector")
	}
	root, t, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected()
	}
	if t != sBool && t != sAny {
		return nil, &SyntaxError{Pos: 1, Msg: "expected a boolean expression"}
	}
	return &Selector{src: src, root: root}, nil
}

// Match reports whether the selector is TRUE for the headers g gives.
func (s *Selector) Match(g Getter) bool { return s.Eval(g) == True }

// Eval is the selector's three-valued result for the headers g gives.
func (s *Selector) Eval(g Getter) Result { return truth(s.root.eval(g)) }

// Source returns the selector as given to Parse.
func (s *Selector) Source() string { return s.src }

// String returns a canonical form: keywords upper case, single spaces,
// parentheses only where precedence needs them. Parse(s.String()) yields
// the same tree.
func (s *Selector) String() string {
	var b strings.Builder
	s.root.write(&b)
	return b.String()
}

func (p *parser) advance() *SyntaxError {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errHere(msg string) *SyntaxError {
	return &SyntaxError{Pos: p.tok.pos + 1, Msg: msg}
}

func (p *parser) unexpected() *SyntaxError {
	switch p.tok.kind {
	case tEOF:
		return p.errHere("unexpected end of selector")
	case tString:
		return p.errHere("unexpected string")
	case tInt, tFloat, tOp, tKeyword, tIdent:
		return p.errHere("unexpected '" + p.tok.text + "'")
	}
	return p.errHere("unexpected token")
}

func (p *parser) isKeyword(kw string) bool { return p.tok.kind == tKeyword && p.tok.text == kw }
func (p *parser) isOp(op string) bool      { return p.tok.kind == tOp && p.tok.text == op }

func (p *parser) expectKeyword(kw string) *SyntaxError {
	if !p.isKeyword(kw) {
		return p.errHere("expected " + kw)
	}
	return p.advance()
}

func (p *parser) expectOp(op string) *SyntaxError {
	if !p.isOp(op) {
		return p.errHere("expected '" + op + "'")
	}
	return p.advance()
}

func (p *parser) enter() *SyntaxError {
	p.depth++
	if p.depth > MaxDepth {
		return p.errHere("selector nested deeper than 64")
	}
	return nil
}

func needBool(t stype, pos int) *SyntaxError {
	if t != sBool && t != sAny {
		return &SyntaxError{Pos: pos + 1, Msg: "expected a boolean expression"}
	}
	return nil
}

func needNum(t stype, pos int) *SyntaxError {
	if t != sNum && t != sAny {
		return &SyntaxError{Pos: pos + 1, Msg: "expected a numeric expression"}
	}
	return nil
}

// needOrdered checks an operand of < <= > >= or BETWEEN: a number or an
// identifier. ActiveMQ refuses string literals there, and JMS defines no
// order on booleans.
func needOrdered(t stype, pos int) *SyntaxError {
	if t == sBool || t == sStr {
		return &SyntaxError{Pos: pos + 1, Msg: "expected a numeric expression"}
	}
	return nil
}

func needStr(t stype, pos int) *SyntaxError {
	if t != sStr && t != sAny {
		return &SyntaxError{Pos: pos + 1, Msg: "expected a string expression"}
	}
	return nil
}

// parseOr: and { OR and }
func (p *parser) parseOr() (node, stype, *SyntaxError) {
	pos := p.tok.pos
	l, t, err := p.parseAnd()
	if err != nil {
		return nil, 0, err
	}
	for p.isKeyword("OR") {
		if err := needBool(t, pos); err != nil {
			return nil, 0, err
		}
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		rpos := p.tok.pos
		r, rt, err := p.parseAnd()
		if err != nil {
			return nil, 0, err
		}
		if err := needBool(rt, rpos); err != nil {
			return nil, 0, err
		}
		l, t = &logicNode{or: true, l: l, r: r}, sBool
	}
	return l, t, nil
}

// parseAnd: not { AND not }
func (p *parser) parseAnd() (node, stype, *SyntaxError) {
	pos := p.tok.pos
	l, t, err := p.parseNot()
	if err != nil {
		return nil, 0, err
	}
	for p.isKeyword("AND") {
		if err := needBool(t, pos); err != nil {
			return nil, 0, err
		}
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		rpos := p.tok.pos
		r, rt, err := p.parseNot()
		if err != nil {
			return nil, 0, err
		}
		if err := needBool(rt, rpos); err != nil {
			return nil, 0, err
		}
		l, t = &logicNode{l: l, r: r}, sBool
	}
	return l, t, nil
}

// parseNot: NOT not | comparison
func (p *parser) parseNot() (node, stype, *SyntaxError) {
	if !p.isKeyword("NOT") {
		return p.parseComparison()
	}
	if err := p.enter(); err != nil {
		return nil, 0, err
	}
	if err := p.advance(); err != nil {
		return nil, 0, err
	}
	pos := p.tok.pos
	x, t, err := p.parseNot()
	if err != nil {
		return nil, 0, err
	}
	if err := needBool(t, pos); err != nil {
		return nil, 0, err
	}
	p.depth--
	return &notNode{x: x}, sBool, nil
}

var cmpOps = map[string]cmpOp{"=": opEq, "<>": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe}

// parseComparison: additive [ cmpop additive | [NOT] BETWEEN | [NOT] IN |
// [NOT] LIKE | IS [NOT] NULL ]
func (p *parser) parseComparison() (node, stype, *SyntaxError) {
	pos := p.tok.pos
	l, t, err := p.parseAdditive()
	if err != nil {
		return nil, 0, err
	}
	if p.tok.kind == tOp {
		op, ok := cmpOps[p.tok.text]
		if !ok {
			return l, t, nil
		}
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		rpos := p.tok.pos
		r, rt, err := p.parseAdditive()
		if err != nil {
			return nil, 0, err
		}
		if op != opEq && op != opNe {
			if err := needOrdered(t, pos); err != nil {
				return nil, 0, err
			}
			if err := needOrdered(rt, rpos); err != nil {
				return nil, 0, err
			}
		}
		return &cmpNode{op: op, l: l, r: r}, sBool, nil
	}
	if p.isKeyword("IS") {
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		not := p.isKeyword("NOT")
		if not {
			if err := p.advance(); err != nil {
				return nil, 0, err
			}
		}
		if err := p.expectKeyword("NULL"); err != nil {
			return nil, 0, err
		}
		return &isNullNode{not: not, x: l}, sBool, nil
	}
	not := false
	if p.isKeyword("NOT") {
		not = true
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		if !p.isKeyword("BETWEEN") && !p.isKeyword("IN") && !p.isKeyword("LIKE") {
			return nil, 0, p.errHere("expected BETWEEN, IN or LIKE")
		}
	}
	switch {
	case p.isKeyword("BETWEEN"):
		return p.parseBetween(l, t, pos, not)
	case p.isKeyword("IN"):
		if err := needStr(t, pos); err != nil {
			return nil, 0, err
		}
		return p.parseIn(l, not)
	case p.isKeyword("LIKE"):
		if err := needStr(t, pos); err != nil {
			return nil, 0, err
		}
		return p.parseLike(l, not)
	}
	return l, t, nil
}

func (p *parser) parseBetween(x node, t stype, pos int, not bool) (node, stype, *SyntaxError) {
	if err := needOrdered(t, pos); err != nil {
		return nil, 0, err
	}
	if err := p.advance(); err != nil {
		return nil, 0, err
	}
	lpos := p.tok.pos
	lo, lt, err := p.parseAdditive()
	if err != nil {
		return nil, 0, err
	}
	if err := needOrdered(lt, lpos); err != nil {
		return nil, 0, err
	}
	if err := p.expectKeyword("AND"); err != nil {
		return nil, 0, err
	}
	hpos := p.tok.pos
	hi, ht, err := p.parseAdditive()
	if err != nil {
		return nil, 0, err
	}
	if err := needOrdered(ht, hpos); err != nil {
		return nil, 0, err
	}
	return &betweenNode{not: not, x: x, lo: lo, hi: hi}, sBool, nil
}

func (p *parser) parseIn(x node, not bool) (node, stype, *SyntaxError) {
	if err := p.advance(); err != nil {
		return nil, 0, err
	}
	if err := p.expectOp("("); err != nil {
		return nil, 0, err
	}
	n := &inNode{not: not, x: x}
	for {
		if p.tok.kind != tString {
			return nil, 0, p.errHere("expected a string literal")
		}
		if len(n.list) == MaxInList {
			return nil, 0, p.errHere("IN list longer than 1024")
		}
		n.list = append(n.list, p.tok.str)
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		if p.isOp(")") {
			break
		}
		if err := p.expectOp(","); err != nil {
			return nil, 0, p.errHere("expected ',' or ')'")
		}
	}
	if err := p.advance(); err != nil {
		return nil, 0, err
	}
	if len(n.list) > inSetThreshold {
		n.set = make(map[string]struct{}, len(n.list))
		for _, s := range n.list {
			n.set[s] = struct{}{}
		}
	}
	return n, sBool, nil
}

func (p *parser) parseLike(x node, not bool) (node, stype, *SyntaxError) {
	if err := p.advance(); err != nil {
		return nil, 0, err
	}
	if p.tok.kind != tString {
		return nil, 0, p.errHere("expected a string literal")
	}
	n := &likeNode{not: not, x: x, pattern: p.tok.str}
	if err := p.advance(); err != nil {
		return nil, 0, err
	}
	var esc rune
	if p.isKeyword("ESCAPE") {
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		if p.tok.kind != tString || utf8.RuneCountInString(p.tok.str) != 1 {
			return nil, 0, p.errHere("expected a string of one character")
		}
		n.escape = p.tok.str
		esc, _ = utf8.DecodeRuneInString(n.escape)
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
	}
	n.toks = compileLike(n.pattern, esc, n.escape != "")
	return n, sBool, nil
}

// parseAdditive: mul { (+|-) mul }
func (p *parser) parseAdditive() (node, stype, *SyntaxError) {
	return p.parseArith("+", "-", p.parseMul)
}

// parseMul: unary { (*|/) unary }
func (p *parser) parseMul() (node, stype, *SyntaxError) {
	return p.parseArith("*", "/", p.parseUnary)
}

// parseArith parses one left-associative level of arithmetic: operand
// { (op1|op2) operand }, where every operand must be numeric.
func (p *parser) parseArith(op1, op2 string, operand func() (node, stype, *SyntaxError)) (node, stype, *SyntaxError) {
	pos := p.tok.pos
	l, t, err := operand()
	if err != nil {
		return nil, 0, err
	}
	for p.isOp(op1) || p.isOp(op2) {
		op := p.tok.text[0]
		if err := needNum(t, pos); err != nil {
			return nil, 0, err
		}
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		rpos := p.tok.pos
		r, rt, err := operand()
		if err != nil {
			return nil, 0, err
		}
		if err := needNum(rt, rpos); err != nil {
			return nil, 0, err
		}
		l, t = &arithNode{op: op, l: l, r: r}, sNum
	}
	return l, t, nil
}

// parseUnary: (+|-) unary | primary
func (p *parser) parseUnary() (node, stype, *SyntaxError) {
	if !p.isOp("+") && !p.isOp("-") {
		return p.parsePrimary()
	}
	neg := p.tok.text == "-"
	if err := p.enter(); err != nil {
		return nil, 0, err
	}
	if err := p.advance(); err != nil {
		return nil, 0, err
	}
	pos := p.tok.pos
	x, t, err := p.parseUnary()
	if err != nil {
		return nil, 0, err
	}
	if err := needNum(t, pos); err != nil {
		return nil, 0, err
	}
	p.depth--
	return &signNode{neg: neg, x: x}, sNum, nil
}

// parsePrimary: literal | identifier | ( or )
func (p *parser) parsePrimary() (node, stype, *SyntaxError) {
	t := p.tok
	var n node
	var st stype
	switch t.kind {
	case tIdent:
		n, st = &identNode{name: t.text}, sAny
	case tString:
		n, st = &litNode{v: value{k: kStr, s: t.str}}, sStr
	case tInt:
		n, st = &litNode{v: value{k: kInt, i: t.i}}, sNum
	case tFloat:
		n, st = &litNode{v: value{k: kFloat, f: t.f}}, sNum
	case tKeyword:
		switch t.text {
		case "TRUE":
			n, st = &litNode{v: trueV}, sBool
		case "FALSE":
			n, st = &litNode{v: falseV}, sBool
		case "NULL":
			n, st = &litNode{v: nullV}, sAny
		default:
			return nil, 0, p.unexpected()
		}
	case tOp:
		if t.text != "(" {
			return nil, 0, p.unexpected()
		}
		if err := p.enter(); err != nil {
			return nil, 0, err
		}
		if err := p.advance(); err != nil {
			return nil, 0, err
		}
		x, xt, err := p.parseOr()
		if err != nil {
			return nil, 0, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, 0, err
		}
		p.depth--
		return x, xt, nil
	default:
		return nil, 0, p.unexpected()
	}
	if err := p.advance(); err != nil {
		return nil, 0, err
	}
	return n, st, nil
}
