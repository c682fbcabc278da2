package config

import (
	"slices"
	"testing"
)

func TestRolesConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []Role
		err        string // Validate's problems, located in the file
	}{
		{"default: all three", "durability: os\n", AllRoles, ""},
		{"empty value keeps the default", "roles:\n", AllRoles, ""},
		{"a subset", "roles: [intake, pipeline]\n", []Role{RoleIntake, RolePipeline}, ""},
		{"api only", "roles:\n  - api\n", []Role{RoleAPI}, ""},
		{"empty list", "durability: os\nroles: []\n", []Role{}, "line 2: roles: must list at least one of intake, pipeline, api (leave it out to run all three)"},
		{"unknown role", "roles:\n  - intake\n  - worker\n", []Role{RoleIntake, "worker"}, `line 3: roles[1]: unknown role "worker": must be intake, pipeline or api`},
		{"repeated role", "roles: [api, api]\n", []Role{RoleAPI, RoleAPI}, "line 1: roles[1]: api is listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Roles, tt.want) {
				t.Errorf("Roles = %q, want %q", cfg.Roles, tt.want)
			}
			got := ""
			if ps := cfg.Locate(cfg.Validate()); len(ps) > 0 {
				got = ps.Error()
			}
			if got != tt.err {
				t.Errorf("Validate =\n%s\nwant\n%s", got, tt.err)
			}
			for _, r := range AllRoles {
				if cfg.HasRole(r) != slices.Contains(tt.want, r) {
					t.Errorf("HasRole(%s) = %v with roles %q", r, cfg.HasRole(r), tt.want)
				}
			}
		})
	}
	// Default hands out its own copy: changing one configuration's roles
	// leaves the next default whole.
	c := Default()
	c.Roles[0] = RoleAPI
	if d := Default(); !slices.Equal(d.Roles, AllRoles) {
		t.Errorf("Default().Roles = %q after a caller changed its copy", d.Roles)
	}
}

func TestParseRoles(t *testing.T) {
	tests := []struct {
		in   string
		want []Role
	}{
		{"intake,pipeline,api", AllRoles},
		{" intake , api ", []Role{RoleIntake, RoleAPI}},
		{"pipeline,", []Role{RolePipeline}},
		{"", []Role{}},
		{"Intake", []Role{"Intake"}}, // names are exact: Validate refuses it
	}
	for _, tt := range tests {
		if got := ParseRoles(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("ParseRoles(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	c := Default()
	c.Roles = ParseRoles("")
	if err := c.Validate(); err == nil || err.Error() != "roles: must list at least one of intake, pipeline, api (leave it out to run all three)" {
		t.Errorf("--roles '': Validate = %v", err)
	}
	c.Roles = ParseRoles("Intake")
	if err := c.Validate(); err == nil || err.Error() != `roles[0]: unknown role "Intake": must be intake, pipeline or api` {
		t.Errorf("--roles Intake: Validate = %v", err)
	}
}
