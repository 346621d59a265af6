package selector

// headers is a Getter over a map; maps are pointer-shaped, so converting
// one to Getter does not allocate.
type headers map[string]string

func (h headers) Get(name string) (string, bool) {
	v, ok := h[name]
	return v, ok
}

// std is the header set most fixtures use.
var std = headers{
	"type":   "car",
	"color":  "red",
	"weight": "3",
	"price":  "2.5",
	"big":    "9223372036854775807",
	"flag":   "true",
	"off":    "FALSE",
	"word":   "heavy",
	"name":   "it's",
	"pct":    "100%",
	"uni":    "héllo",
	"empty":  "",
	"neg":    "-4",
	"exp":    "1.5e3",
	"hex":    "0x10",
	"space":  " 3",
	"Type":   "truck",
}

// evalCases is the fixture table: every operator, the coercions of doc.go
// and the NULL rows of the JMS truth tables. "missing" is never set.
var evalCases = []struct {
	sel  string
	h    headers
	want Result
}{
	// Literals and identifiers.
	{"TRUE", std, True},
	{"FALSE", std, False},
	{"NULL", std, Unknown},
	{"true", std, True},  // keywords are case-insensitive
	{"flag", std, False}, // a header is never a boolean by itself (ActiveMQ)
	{"off", std, False},
	{"flag AND TRUE", std, False},
	{"NOT flag", std, True},
	{"NOT off", std, True},
	{"flag OR missing", std, Unknown},
	{"word", std, False},
	{"missing", std, Unknown},
	{"type = 'car'", std, True},
	{"Type = 'car'", std, False}, // identifiers are case-sensitive
	{"Type = 'truck'", std, True},
	{"$x = 'a' OR _y IS NULL", std, True},

	// = <> on strings, numbers, booleans.
	{"type = 'car'", std, True},
	{"type <> 'car'", std, False},
	{"type = 'Car'", std, False},
	{"name = 'it''s'", std, True},
	{"empty = ''", std, True},
	{"uni = 'héllo'", std, True},
	{"weight = 3", std, True},
	{"weight = 3.0", std, True},
	{"weight <> 3", std, False},
	{"price = 2.5", std, True},
	{"price = 25e-1", std, True},
	{"exp = 1500", std, False}, // Long.valueOf("1.5e3") fails
	{"exp = 1500.0", std, True},
	{"weight = 3.0", headers{"weight": " 3 "}, True}, // Double.valueOf trims
	{"weight = 3.0", headers{"weight": "3d"}, True},
	{"weight = 3", headers{"weight": "3.0"}, False},
	{"weight = 3", headers{"weight": "+3"}, True},
	{"weight = 3", headers{"weight": "3L"}, False},
	{"neg = -4", std, True},
	{"big = 9223372036854775807", std, True},
	{"big = 9223372036854775806", std, False}, // exact, not via float64
	{"weight = '3'", std, True},               // string against string
	{"weight = '3.0'", std, False},
	{"flag = TRUE", std, True},
	{"off = FALSE", std, True},
	{"flag <> FALSE", std, True},
	{"TRUE = TRUE", std, True},
	{"TRUE <> FALSE", std, True},
	{"color = type", std, False},
	{"color = color", std, True},
	{"1 = 1", std, True},
	{"1 = 1.0", std, True},
	{"0.1 + 0.2 = 0.3", std, False}, // float64, as Java's double

	// Non-like types compare FALSE (JMS 3.8.1.2), not UNKNOWN.
	{"word = 3", std, False},
	{"word > 3", std, False},
	{"NOT (word > 2)", std, True},
	{"hex = 16", std, False},  // no hex in header values
	{"space = 3", std, False}, // no spaces either
	{"word = TRUE", std, False},
	{"word = FALSE", std, True}, // Boolean.valueOf: anything but "true" is false
	{"empty = FALSE", std, True},
	{"flag = FALSE", std, False},
	{"'TRUE' = TRUE", std, True},
	{"weight = TRUE", std, False},
	{"'3' = 3", std, True}, // string literals convert too, as in ActiveMQ
	{"'3.5' = 3.5", std, True},
	{"'x' = 3", std, False},
	{"NOT ('x' = 3)", std, True},
	{"TRUE = 1", std, False},
	{"NOT ('a' = 1)", std, True},

	// Ordering.
	{"weight > 2", std, True},
	{"weight > 3", std, False},
	{"weight >= 3", std, True},
	{"weight < 3.5", std, True},
	{"weight <= 2", std, False},
	{"price > 2", std, False}, // Long.valueOf("2.5") fails
	{"price > 2.0", std, True},
	{"price < 2.6", std, True},
	{"neg < 0", std, True},
	{"exp > 1000.0", std, True},
	{"color > type", std, True}, // two headers: bytewise
	{"type > color", std, False},
	{"weight < ten", headers{"weight": "9", "ten": "10"}, False}, // bytewise, as ActiveMQ
	{"weight < ten", headers{"weight": "9", "ten": "x"}, True},   // bytewise: "9" < "x"
	{"-weight < 0", std, True},
	{"big > 9.2e18", std, True},

	// NULL in comparisons.
	{"missing = 'a'", std, Unknown},
	{"missing <> 'a'", std, Unknown},
	{"missing > 1", std, Unknown},
	{"missing = missing", std, Unknown},
	{"NULL = NULL", std, Unknown},
	{"missing = TRUE", std, Unknown},

	// AND truth table.
	{"TRUE AND TRUE", std, True},
	{"TRUE AND FALSE", std, False},
	{"TRUE AND missing", std, Unknown},
	{"FALSE AND TRUE", std, False},
	{"FALSE AND FALSE", std, False},
	{"FALSE AND missing", std, False},
	{"missing AND TRUE", std, Unknown},
	{"missing AND FALSE", std, False},
	{"missing AND missing", std, Unknown},
	// OR truth table.
	{"TRUE OR TRUE", std, True},
	{"TRUE OR FALSE", std, True},
	{"TRUE OR missing", std, True},
	{"FALSE OR TRUE", std, True},
	{"FALSE OR FALSE", std, False},
	{"FALSE OR missing", std, Unknown},
	{"missing OR TRUE", std, True},
	{"missing OR FALSE", std, Unknown},
	{"missing OR missing", std, Unknown},
	// NOT truth table.
	{"NOT TRUE", std, False},
	{"NOT FALSE", std, True},
	{"NOT missing", std, Unknown},
	{"NOT (missing = 1)", std, Unknown},
	{"NOT NOT TRUE", std, True},
	// Precedence: NOT over AND over OR; comparison over NOT.
	{"TRUE OR FALSE AND FALSE", std, True},
	{"(TRUE OR FALSE) AND FALSE", std, False},
	{"NOT FALSE AND FALSE", std, False},
	{"NOT weight = 4", std, True},
	{"type = 'car' AND weight > 2.5 AND color IN ('red', 'blue')", std, True},

	// Arithmetic.
	{"weight + 1 = 4", std, True},
	{"weight - 1 = 2", std, True},
	{"weight * 2 = 6", std, True},
	{"weight / 2 = 1.5", std, True}, // always float64, as ActiveMQ
	{"7 / 2 = 3", std, False},
	{"6 / 2 = 3", std, True},
	{"weight / 2.0 = 1.5", std, True},
	{"price * 2 = 5", std, True},
	{"1 + 2 * 3 = 7", std, True},
	{"(1 + 2) * 3 = 9", std, True},
	{"10 - 4 - 3 = 3", std, True}, // left-associative
	{"24 / 4 / 2 = 3", std, True},
	{"-weight = -3", std, True},
	{"+weight = 3", std, True},
	{"- -3 = 3", std, True},
	{"0x10 = 16", std, True},
	{"010 = 8", std, True},
	{"7L = 7", std, True},
	{".5 = 0.5", std, True},
	{"7. = 7", std, True},
	{"1e3 = 1000", std, True},
	{"1.5E-3 = 0.0015", std, True},
	{"big + 1 > 0", std, True}, // overflow goes to float64, never wraps
	{"big * 2 > big", std, True},
	{"weight / 0 = 1", std, Unknown},
	{"weight / 0.0 = 1", std, Unknown},
	{"missing + 1 = 1", std, Unknown},
	{"word + 1 = 1", std, Unknown},
	{"-word = 1", std, Unknown},
	{"-missing IS NULL", std, True},

	// BETWEEN.
	{"weight BETWEEN 1 AND 5", std, True},
	{"weight BETWEEN 3 AND 3", std, True},
	{"weight BETWEEN 4 AND 5", std, False},
	{"weight BETWEEN 5 AND 1", std, False},
	{"weight NOT BETWEEN 4 AND 5", std, True},
	{"weight NOT BETWEEN 1 AND 5", std, False},
	{"price BETWEEN 2.0 AND 2.5", std, True},
	{"price BETWEEN 2 AND 3", std, False}, // Long.valueOf("2.5") fails
	{"weight BETWEEN 1 + 1 AND 2 * 2", std, True},
	{"missing BETWEEN 1 AND 5", std, Unknown},
	{"missing NOT BETWEEN 1 AND 5", std, Unknown},
	// ActiveMQ 5.17.2 (e2e/testdata/activemq, selectors): a value that does
	// not convert makes = and BETWEEN FALSE, <> (NOT =) TRUE, and
	// NOT BETWEEN (x < a OR x > b) FALSE.
	{"word <> 2", std, True},
	{"price <> 2", std, True},
	{"word = 2", std, False},
	{"word BETWEEN 2 AND 3", std, False},
	{"word NOT BETWEEN 2 AND 3", std, False},
	{"price NOT BETWEEN 2 AND 3", std, False},
	{"NOT (word NOT BETWEEN 2 AND 3)", std, True},
	{"weight BETWEEN missing AND 5", std, Unknown},
	{"weight BETWEEN missing AND 2", std, False}, // FALSE AND UNKNOWN
	{"weight NOT BETWEEN missing AND 2", std, True},
	{"word BETWEEN 1 AND 5", std, False},

	// IN.
	{"color IN ('red', 'blue')", std, True},
	{"color IN ('blue')", std, False},
	{"color NOT IN ('blue', 'green')", std, True},
	{"color NOT IN ('red')", std, False},
	{"missing IN ('a')", std, Unknown},
	{"missing NOT IN ('a')", std, Unknown},
	{"weight IN ('3')", std, True},
	{"color IN ('a','b','c','d','e','f','g','h','i','red')", std, True}, // map path
	{"color IN ('a','b','c','d','e','f','g','h','i','j')", std, False},
	{"color NOT IN ('a','b','c','d','e','f','g','h','i','j')", std, True},
	{"color in ('RED')", std, False},

	// LIKE.
	{"type LIKE 'car'", std, True},
	{"type LIKE 'c%'", std, True},
	{"type LIKE '%r'", std, True},
	{"type LIKE '%a%'", std, True},
	{"type LIKE 'c_r'", std, True},
	{"type LIKE '_'", std, False},
	{"type LIKE '___'", std, True},
	{"type LIKE 'ca'", std, False},
	{"type LIKE '%'", std, True},
	{"empty LIKE '%'", std, True},
	{"empty LIKE '_'", std, False},
	{"type LIKE 'C%'", std, False},
	{"type NOT LIKE 'b%'", std, True},
	{"type NOT LIKE 'c%'", std, False},
	{"uni LIKE 'h_llo'", std, True}, // _ is one code point
	{"uni LIKE 'h%o'", std, True},
	{"pct LIKE '100\\%' ESCAPE '\\'", std, True},
	{"pct LIKE '1\\%' ESCAPE '\\'", std, False},
	{"type LIKE 'c!%' ESCAPE '!'", std, False},
	{"name LIKE 'it''_'", std, True},
	{"name LIKE '%''%'", std, True},
	{"type LIKE '%%%r'", std, True},
	{"type LIKE 'c%%r%'", std, True},
	{"type LIKE '%a%a%'", std, False},
	{"missing LIKE '%'", std, Unknown},
	{"missing NOT LIKE '%'", std, Unknown},
	{"weight LIKE '3'", std, True},
	{"type LIKE '.*'", std, False}, // not a regexp
	{"type like 'car' escape '!'", std, True},

	// IS [NOT] NULL.
	{"missing IS NULL", std, True},
	{"missing IS NOT NULL", std, False},
	{"type IS NULL", std, False},
	{"type IS NOT NULL", std, True},
	{"empty IS NULL", std, False},
	{"NULL IS NULL", std, True},
	{"weight + missing IS NULL", std, True},
	{"missing is not null OR type = 'car'", std, True},

	// No headers at all.
	{"a = 1", headers{}, Unknown},
	{"a IS NULL AND b IS NULL", headers{}, True},
}

// badCases are selectors Parse refuses, with the 1-based position.
var badCases = []struct {
	sel string
	pos int
}{
	{"", 1},
	{"   ", 4},
	{"a =", 4},
	{"(a = 1", 7},
	{"a = 1)", 6},
	{"a == 1", 4},
	{"a = 'x", 5},
	{"a ! 1", 3},
	{"a = 1 b = 2", 7},
	{"'a'", 1},
	{"1", 1},
	{"1 + 2", 1},
	{"a AND 1", 7},
	{"1 OR a", 1},
	{"NOT 'x'", 5},
	{"a + 'x' = 1", 5},
	{"'x' * 2 = 1", 1},
	{"a < TRUE", 5},
	{"TRUE < FALSE", 1},
	{"type > 'bus'", 8},
	{"'9' < '10'", 1},
	{"a BETWEEN 'a' AND 'd'", 11},
	{"a BETWEEN 1 AND 'd'", 17},
	{"TRUE > a", 1},
	{"a IN ()", 7},
	{"a IN ('x',)", 11},
	{"a IN ('x' 'y')", 11},
	{"a IN (1, 2)", 7},
	{"a IN 'x'", 6},
	{"3 IN ('x')", 1},
	{"a LIKE 3", 8},
	{"a LIKE 'x' ESCAPE 'ab'", 19},
	{"a LIKE 'x' ESCAPE ''", 19},
	{"1 LIKE 'x'", 1},
	{"a BETWEEN 1", 12},
	{"a BETWEEN 1 OR 2", 13},
	{"a BETWEEN TRUE AND 2", 11},
	{"a IS 1", 6},
	{"a IS NOT", 9},
	{"a NOT 1", 7},
	{"AND", 1},
	{"a = 12abc", 5},
	{"a = 09", 5},
	{"a = 0x", 5},
	{"a = 99999999999999999999", 5},
	{"a = 1e999", 5},
	{"a = 1.2.3", 5},
	{"a = #", 5},
	{"a = \xff", 5},
	{"a = ()", 6},
	{"a.b = 1", 2},
}
