package selector

import "strconv"

// Limits on what Parse accepts. Exceeding one is a *SyntaxError.
const (
	MaxLength = 4096 // bytes of selector source
	MaxDepth  = 64   // nested parentheses, NOT and unary signs
	MaxInList = 1024 // strings in one IN list
)

// SyntaxError is a selector Parse refused. Pos is the 1-based byte position
// of the offending token (len(src)+1 for an unexpected end).
type SyntaxError struct {
	Pos int
	Msg string
}

// Error reads like "Invalid selector at position 12: expected ')'".
func (e *SyntaxError) Error() string {
	return "Invalid selector at position " + strconv.Itoa(e.Pos) + ": " + e.Msg
}
