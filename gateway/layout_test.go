package gateway

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The packages around the session core never import it, nor anything above
// them (issue 11, README "Design"): the AMQP side, configuration, admin,
// the WebSocket transport, the codec and mapping stay reusable and testable
// without sessions.
func TestNoPackageImportsUpwards(t *testing.T) {
	const module = "github.com/stompgate/stompgate/"
	allowed := map[string][]string{
		"gateway/broker":           {"gateway/config", "gateway/codec"},
		"gateway/config":           {"gateway/auth"},
		"gateway/auth":             nil,
		"gateway/auth/authtest":    {"gateway/auth"},
		"gateway/admin":            {"gateway/config", "gateway/codec"},
		"gateway/ws":               nil,
		"gateway/codec":            nil,
		"gateway/codec/codectest":  {"gateway/codec"},
		"gateway/internal/testpki": nil,
		"gateway/internal/wstest":  nil,
		"mapping":                  {"gateway/codec"},
		"mapping/selector":         nil,
	}
	for dir, ok := range allowed {
		pkg, err := build.ImportDir(filepath.Join("..", dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				own, found := strings.CutPrefix(imp, module)
				switch {
				case !found, own == dir, strings.HasPrefix(own, dir+"/"), slices.Contains(ok, own):
				case test && (strings.HasPrefix(own, "gateway/internal/") || own == "gateway/codec"):
					// test support and the codec's fixtures
				default:
					t.Errorf("%s imports %s; it may import only %v of this module", dir, own, ok)
				}
			}
		}
		check(pkg.Imports, false)
		check(append(pkg.TestImports, pkg.XTestImports...), true)
	}
}
