package selector_test

import (
	"fmt"

	"github.com/stompgate/stompgate/mapping/selector"
)

func Example() {
	s, err := selector.Parse("type = 'car' AND weight > 2 AND color IN ('red', 'blue')")
	if err != nil {
		panic(err)
	}
	headers := map[string]string{"type": "car", "weight": "3", "color": "red"}
	get := selector.Lookup(func(name string) (string, bool) {
		v, ok := headers[name]
		return v, ok
	})
	fmt.Println(s.Match(get))
	headers["weight"] = "2"
	fmt.Println(s.Match(get))
	delete(headers, "color")
	fmt.Println(s.Eval(get))

	_, err = selector.Parse("type = 'car' AND (weight > 2")
	fmt.Println(err)
	// Output:
	// true
	// false
	// FALSE
	// Invalid selector at position 29: expected ')'
}
