package auth

import (
	"fmt"
	"slices"
)

// PermittedAlgorithms returns the JWS algorithms an allow-list
// (Options.Algorithms, auth.jwt.algorithms) may name: asymmetric ones only.
func PermittedAlgorithms() []string { return slices.Clone(permittedAlgorithms) }

// CheckAlgorithms reports the first algorithm of algs that is not
// permitted, so configuration validation refuses what NewVerifier would.
func CheckAlgorithms(algs []string) error {
	for _, a := range algs {
		if !slices.Contains(permittedAlgorithms, a) {
			return fmt.Errorf("algorithm %q is not allowed (use one of %v)", a, permittedAlgorithms)
		}
	}
	return nil
}
