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
// x < a OR x > b, as ActiveMQ builds it (for a value that does not convert
// both comparisons are FALSE, so NOT BETWEEN is FALSE too). A message
// matches only when the selector is TRUE.
//
// # Header values and coercion
//
// STOMP headers are strings. ActiveMQ's STOMP transport evaluates selectors
// with its convert_string_expressions mode, in which a string takes the type
// of what it is compared with; this package does the same, checked against
// ActiveMQ 5.17.2:
//
//   - A string (a header value or a string literal) compared with an exact
//     number (an integer literal, or arithmetic on integers) is read as
//     Java's Long.valueOf does: optional sign, decimal digits, int64.
//     `weight > 2` matches `weight:3` and `weight:+3`, but not `weight:2.5`
//     or `weight:3.0`, and '3' = 3 is TRUE.
//   - Compared with an approximate number (a literal with a point or an
//     exponent, or arithmetic involving one) it is read as Double.valueOf
//     does for decimals: surrounding whitespace and an f/d suffix allowed.
//     `weight > 2.0` matches `weight:2.5`, `weight:3` and `weight: 3`.
//   - Compared with TRUE or FALSE it is read as Boolean.valueOf: "true" in
//     any case is TRUE, every other string is FALSE.
//   - A string that cannot be read as the number makes the comparison FALSE,
//     not UNKNOWN (JMS 3.8.1.2: "non-like type values" compare FALSE), so
//     `NOT (weight > 2)` matches `weight:heavy`; `<>` is NOT (=) as in
//     ActiveMQ, so `weight <> 2` matches `weight:heavy` and `weight:2.5`.
//     Other mixed types (a boolean with a number) compare FALSE too.
//   - Two strings: = and <> compare bytes. < <= > >= between two headers
//     compare bytewise, so "9" > "10", as ActiveMQ does; with a string
//     literal they are a syntax error, as in ActiveMQ.
//   - A header alone as an operand of AND, OR or NOT, or as the whole
//     selector, is FALSE whatever its value (UNKNOWN if missing), as in
//     ActiveMQ: `flag` never matches and `NOT flag` matches flag:true.
//     Write `flag = TRUE`.
//   - IN compares the value as a string with each listed string; LIKE
//     matches the string.
//   - Arithmetic and unary +/- read a header as a number (sign, digits,
//     fraction, exponent); one that does not read as a number makes the
//     result NULL. + - * on two integers: int64; an overflow or an
//     approximate operand: float64. / is always float64 (ActiveMQ: 7 / 2 is
//     3.5). Division by zero is NULL (ActiveMQ: Infinity). ActiveMQ 5.17 differs here: it applies no conversion in
//     arithmetic (`weight + 1` concatenates strings, `weight / 2` raises an
//     ERROR), so selectors with arithmetic on headers match nothing there.
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
