package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/auth"
)

func TestTokenNewListRevoke(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens.yaml")
	tok, errOut, err := runCLI(t, "", "token", "new", "--tokens-file", file, "--role", "clinician", "--name", "Dr Grey", "--provider", "G001")
	if err != nil || !strings.HasPrefix(tok, auth.TokenPrefix) || !strings.Contains(errOut, "will not be shown again") {
		t.Fatalf("token new: %v %q %q", err, tok, errOut)
	}
	if _, _, err := runCLI(t, "", "token", "new", "--tokens-file", file, "--role", "clinician", "--name", "Dr Blue"); exitCode(err) != 2 || !strings.Contains(err.Error(), "provider ID") {
		t.Errorf("clinician without provider: exit %d %v", exitCode(err), err)
	}
	if !strings.HasPrefix(errOut, `issued a clinician token for "Dr Grey"`) {
		t.Errorf("token new says %q", errOut)
	}
	if _, errOut, err := runCLI(t, "", "token", "new", "--data", dir, "--role", "admin", "--name", "Ops"); err != nil || !strings.HasPrefix(errOut, `issued an admin token for "Ops"`) {
		t.Fatalf("token new --data: %v, %q", err, errOut)
	}
	out, _, err := runCLI(t, "", "token", "list", "--data", dir)
	if err != nil || !strings.Contains(out, "Dr Grey") || !strings.Contains(out, "G001") || !strings.Contains(out, "Ops") || strings.Count(out, "active") != 2 {
		t.Fatalf("token list: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(file)
	if strings.Contains(out, auth.TokenPrefix) || !strings.Contains(string(raw), "sha256") || strings.Contains(string(raw), strings.TrimSpace(tok)) {
		t.Errorf("the token itself is stored or listed")
	}
	a, err := auth.New(t.Context(), auth.Config{TokensFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.AuthenticateToken(t.Context(), strings.TrimSpace(tok)); err != nil || p.Name != "Dr Grey" {
		t.Fatalf("the new token does not authenticate: %v %+v", err, p)
	}
	out, _, err = runCLI(t, "", "token", "revoke", "--tokens-file", file, "Dr Grey")
	if err != nil || !strings.Contains(out, `revoked 1 token(s) of "Dr Grey"`) {
		t.Fatalf("token revoke: %v %s", err, out)
	}
	out, _, _ = runCLI(t, "", "token", "list", "--tokens-file", file)
	if !strings.Contains(out, "revoked") || strings.Count(out, "active") != 1 {
		t.Errorf("after revoke: %s", out)
	}
	if _, _, err := runCLI(t, "", "token", "revoke", "--tokens-file", file, "Dr Grey"); exitCode(err) != 1 || !strings.Contains(err.Error(), "no active token") {
		t.Errorf("second revoke: exit %d %v", exitCode(err), err)
	}
	// The revoked token is refused once the authenticator rereads the file.
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AuthenticateToken(t.Context(), strings.TrimSpace(tok)); err == nil {
		t.Error("a revoked token authenticates")
	}
}
