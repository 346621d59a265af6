// Package selector parses and evaluates JMS message selectors, the SQL-92
// subset of JMS 1.1 section 3.8.1, as ActiveMQ's STOMP support applies them
// to STOMP headers.
//
// It owns the selector language only: Parse turns a selector into a tree of
// typed nodes once, and Selector.Match evaluates it against one message's
// headers. The gateway decides which subscriptions may carry a selector,
// which headers an identifier names and what happens to a message that does
// not match. The package is pure: no I/O, no logging, no goroutines, no
// state outside a Selector, which is immutable after Parse and safe for
// concurrent use. It imports only the standard library.
//
// # Language
//
//   - Literals: strings in single quotes (” is a quote), exact numbers in
//     Java integer syntax (decimal, 0x hex, 0 octal, optional L suffix),
//     approximate numbers (1.5, .5, 7., 1e3, 1.5E-3), TRUE, FALSE and NULL.
//   - Identifiers: a letter, _ or $, then letters, digits, _ or $.
//     Identifiers are case-sensitive; keywords (NOT AND OR BETWEEN LIKE
//     ESCAPE IN IS NULL TRUE FALSE) are not, and are not identifiers.
//   - Operators, loosest first: OR; AND; NOT; comparisons = <> < <= > >=,
//     [NOT] BETWEEN x AND y, [NOT] IN ('a', ...), [NOT] LIKE 'p' [ESCAPE
//     'c'] and IS [NOT] NULL; binary + -; * /; unary + -; parentheses.
//   - LIKE: % is any sequence of characters, _ exactly one character
//     (a UTF-8 code point); the escape character makes the next % or _
//     literal. The whole value must match.
//
// # Three-valued logic
//
// Every expression is TRUE, FALSE or UNKNOWN (JMS 3.8.1.2). A missing
// header is NULL; a comparison, arithmetic, BETWEEN, IN or LIKE with a NULL
// operand is UNKNOWN. AND is FALSE if either side is FALSE, TRUE if both are
// TRUE, else UNKNOWN; OR is TRUE if either side is TRUE, FALSE if both are
// FALSE, else UNKNOWN; NOT UNKNOWN is UNKNOWN. x NOT BETWEEN a AND b is
// NOT (x BETWEEN a AND b), which is x < a OR x > b. A message matches only
// when the selector is TRUE.
//
// # Header values and coercion
//
// STOMP headers are strings. A header's value has no type of its own; it
// takes the type of what it meets, as ActiveMQ's STOMP transport does
// (its convert_string_expressions mode):
//
//   - Against a number (literal or arithmetic result) the value is read as a
//     number: optional sign, digits, optional fraction, optional exponent
//     (no hex, no spaces, no NaN or Infinity). An integer that fits in
//     int64 stays exact; anything else is a float64. `weight > 2` matches
//     `weight:3` and `weight:2.5`.
//   - Against TRUE or FALSE the value is read as a boolean: "true" or
//     "false" in any case.
//   - Against a string literal or another header the value is a string.
//     = and <> compare bytes. < <= > >= compare numerically when both sides
//     read as numbers, otherwise bytewise (ActiveMQ's order; JMS itself
//     leaves string ordering undefined).
//   - As an operand of AND, OR, NOT or alone, the value is a boolean as
//     above; any other value is UNKNOWN.
//   - In arithmetic or unary +/- a value that does not read as a number
//     makes the result NULL.
//   - A comparison between values of different types (including a header
//     that does not read as the other side's type) is FALSE, not UNKNOWN,
//     as JMS 3.8.1.2 says for "non-like type values". So `NOT (weight > 2)`
//     matches `weight:heavy`.
//   - Numbers: int64 arithmetic where both operands are integers, overflow
//     and mixed operands in float64; / between integers truncates (Java);
//     division by zero is NULL.
//   - IN compares the value as a string with each listed string.
//
// # Limits
//
// A selector longer than MaxLength bytes, nested deeper than MaxDepth
// (parentheses, NOT and unary signs), or with an IN list longer than
// MaxInList is a *SyntaxError, so no input can exhaust the stack. Parse
// never panics; Match never panics on a parsed selector.
//
// # Cost
//
// Match allocates nothing: values are a small struct passed by value,
// LIKE patterns are compiled at Parse, and long IN lists become a map.
// Pass the headers as a Getter that is pointer-shaped (a Lookup func, or a
// pointer to a header slice type with a Get method) so that the interface
// conversion does not allocate either.
package selector
