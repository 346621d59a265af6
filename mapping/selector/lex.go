package selector

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tKeyword // text is the keyword in upper case
	tString  // str is the decoded value
	tInt
	tFloat
	tOp // text is the operator
)

// token is one lexical token; pos is its 0-based byte offset.
type token struct {
	kind tokKind
	pos  int
	text string
	str  string
	i    int64
	f    float64
}

var keywords = map[string]bool{
	"NOT": true, "AND": true, "OR": true, "BETWEEN": true, "LIKE": true,
	"ESCAPE": true, "IN": true, "IS": true, "NULL": true, "TRUE": true, "FALSE": true,
}

// lexer produces tokens one at a time from src.
type lexer struct {
	src string
	off int
}

func (l *lexer) errAt(pos int, msg string) *SyntaxError {
	return &SyntaxError{Pos: pos + 1, Msg: msg}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func isIdentStart(r rune) bool { return r == '_' || r == '$' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool  { return isIdentStart(r) || unicode.IsDigit(r) }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

func (l *lexer) next() (token, *SyntaxError) {
	for l.off < len(l.src) && isSpace(l.src[l.off]) {
		l.off++
	}
	start := l.off
	if start >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := l.src[start]
	switch {
	case c == '\'':
		return l.lexString()
	case isDigit(c) || (c == '.' && start+1 < len(l.src) && isDigit(l.src[start+1])):
		return l.lexNumber()
	}
	switch c {
	case '=', '+', '-', '*', '/', '(', ')', ',':
		l.off++
		return token{kind: tOp, pos: start, text: l.src[start:l.off]}, nil
	case '<':
		l.off++
		if l.off < len(l.src) && (l.src[l.off] == '=' || l.src[l.off] == '>') {
			l.off++
		}
		return token{kind: tOp, pos: start, text: l.src[start:l.off]}, nil
	case '>':
		l.off++
		if l.off < len(l.src) && l.src[l.off] == '=' {
			l.off++
		}
		return token{kind: tOp, pos: start, text: l.src[start:l.off]}, nil
	}
	r, size := utf8.DecodeRuneInString(l.src[start:])
	if r == utf8.RuneError && size <= 1 {
		return token{}, l.errAt(start, "invalid UTF-8")
	}
	if !isIdentStart(r) {
		return token{}, l.errAt(start, "unexpected character "+strconv.QuoteRune(r))
	}
	l.off += size
	for l.off < len(l.src) {
		r, size = utf8.DecodeRuneInString(l.src[l.off:])
		if !isIdentPart(r) || (r == utf8.RuneError && size <= 1) {
			break
		}
		l.off += size
	}
	word := l.src[start:l.off]
	if up := strings.ToUpper(word); len(up) <= 7 && keywords[up] {
		return token{kind: tKeyword, pos: start, text: up}, nil
	}
	return token{kind: tIdent, pos: start, text: word}, nil
}

// lexString decodes '...' with ” for a quote.
func (l *lexer) lexString() (token, *SyntaxError) {
	start := l.off
	var b strings.Builder
	i := start + 1
	for {
		j := strings.IndexByte(l.src[i:], '\'')
		if j < 0 {
			return token{}, l.errAt(start, "unterminated string")
		}
		b.WriteString(l.src[i : i+j])
		i += j + 1
		if i < len(l.src) && l.src[i] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		break
	}
	l.off = i
	s := b.String()
	if !utf8.ValidString(s) {
		return token{}, l.errAt(start, "invalid UTF-8")
	}
	return token{kind: tString, pos: start, str: s}, nil
}

// lexNumber reads a Java integer literal (decimal, 0x hex, 0 octal, optional
// L) or a floating-point literal (digits, fraction and/or exponent).
func (l *lexer) lexNumber() (token, *SyntaxError) {
	s, start := l.src, l.off
	i := start
	if s[i] == '0' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') {
		i += 2
		j := i
		for i < len(s) && isHex(s[i]) {
			i++
		}
		if i == j {
			return token{}, l.errAt(start, "invalid number")
		}
		return l.intToken(start, s[j:i], 16, i)
	}
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intEnd := i
	isFloat := false
	if i < len(s) && s[i] == '.' {
		isFloat = true
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			isFloat = true
			i = j
		}
	}
	if isFloat {
		f, err := strconv.ParseFloat(s[start:i], 64)
		if err != nil {
			return token{}, l.errAt(start, "number out of range")
		}
		l.off = i
		if err := l.checkAfterNumber(start); err != nil {
			return token{}, err
		}
		return token{kind: tFloat, pos: start, text: s[start:i], f: f}, nil
	}
	digits := s[start:intEnd]
	base := 10
	if len(digits) > 1 && digits[0] == '0' {
		base = 8
		digits = digits[1:]
		for k := 0; k < len(digits); k++ {
			if digits[k] > '7' {
				return token{}, l.errAt(start, "invalid octal number")
			}
		}
	}
	return l.intToken(start, digits, base, intEnd)
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (l *lexer) intToken(start int, digits string, base, end int) (token, *SyntaxError) {
	v, err := strconv.ParseInt(digits, base, 64)
	if err != nil {
		return token{}, l.errAt(start, "number out of range")
	}
	if end < len(l.src) && (l.src[end] == 'l' || l.src[end] == 'L') {
		end++
	}
	l.off = end
	if err := l.checkAfterNumber(start); err != nil {
		return token{}, err
	}
	return token{kind: tInt, pos: start, text: l.src[start:end], i: v}, nil
}

// checkAfterNumber refuses a number glued to a letter or digit, as in 12abc
// or 0x1G.
func (l *lexer) checkAfterNumber(start int) *SyntaxError {
	if l.off >= len(l.src) {
		return nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.off:])
	if isIdentPart(r) || r == '.' {
		return l.errAt(start, "invalid number")
	}
	return nil
}
