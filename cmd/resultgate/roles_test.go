package main

import "testing"

// TestServeRolesFlag: --roles reaches the configuration and is checked like
// the file's roles key, before anything starts.
func TestServeRolesFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown role", []string{"--roles", "intake,worker"}, `roles[1]: unknown role "worker": must be intake, pipeline or api`},
		{"empty list", []string{"--roles", ""}, "roles: must list at least one of intake, pipeline, api (leave it out to run all three)"},
		{"repeated", []string{"--roles", "api,pipeline,api"}, "roles[2]: api is listed twice"},
		// A valid list passes: the next problem is the one reported.
		{"valid roles", []string{"--roles", "intake, pipeline", "--durability", "maybe"}, `durability: must be "fsync" or "os", got "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, "", append([]string{"serve", "--data", t.TempDir()}, tt.args...)...)
			if exitCode(err) != 2 || err.Error() != tt.want {
				t.Fatalf("serve %q: exit %d, err %v; want exit 2 and %q", tt.args, exitCode(err), err, tt.want)
			}
		})
	}
}
