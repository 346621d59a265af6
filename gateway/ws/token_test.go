package ws

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestUpgradeToken(t *testing.T) {
	for _, tc := range []struct {
		name, target, authorization, want string
	}{
		{"none", "/ws", "", ""},
		{"Authorization header", "/ws", "Bearer abc.def.ghi", "abc.def.ghi"},
		{"scheme is case-insensitive", "/ws", "bearer abc", "abc"},
		{"another scheme", "/ws", "Basic Z3Vlc3Q6Z3Vlc3Q=", ""},
		{"query parameter", "/ws?access_token=q.r.s", "", "q.r.s"},
		{"header wins over query", "/ws?access_token=q", "Bearer h", "h"},
		{"empty bearer falls back to query", "/ws?access_token=q", "Bearer ", "q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			if got := upgradeToken(r); got != tc.want {
				t.Errorf("upgradeToken = %q, want %q", got, tc.want)
			}
		})
	}
}
