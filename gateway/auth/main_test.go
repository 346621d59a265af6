package auth_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain proves that Close stops the JWKS refresh goroutine and that no
// HTTP connection goroutine outlives a test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
