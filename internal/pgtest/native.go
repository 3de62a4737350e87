package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/pgcluster"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// EnvNative says what to do when the native verifier cannot be built
// (no C compiler, or no PostgreSQL server headers): "require" fails the
// test (CI sets it), anything else skips it and says why.
const EnvNative = "BULKHEAD_TEST_NATIVE"

// EnvVerifier set to "native" runs every test database on the native
// verifier: the template is migrated, then given it.
const EnvVerifier = "BULKHEAD_TEST_VERIFIER"

// NativeHeadersHint is what to install to build the native verifier.
const NativeHeadersHint = "apt-get install -y gcc postgresql-server-dev-15"

var (
	nativeOnce sync.Once
	nativeLib  string
	nativeErr  error
)

// NativeLibrary builds pgext/bulkhead_verifier.c for the test cluster's
// PostgreSQL, once per test binary, and returns the library's absolute
// path (in a directory the server can read). Without a C compiler or the
// server headers it skips the test, or fails it when BULKHEAD_TEST_NATIVE
// is "require".
func NativeLibrary(tb testing.TB) string {
	tb.Helper()
	setup(tb)
	lib, err := nativeLibrary()
	if err != nil {
		msg := fmt.Sprintf("pgtest: cannot build the native verifier (%s): %v", NativeHeadersHint, err)
		if os.Getenv(EnvNative) == "require" {
			tb.Fatal(msg)
		}
		tb.Skip(msg + "; set " + EnvNative + "=require to fail instead")
	}
	return lib
}

// nativeLibrary builds the library once per test binary.
func nativeLibrary() (string, error) {
	nativeOnce.Do(func() { nativeLib, nativeErr = buildNative() })
	return nativeLib, nativeErr
}

// NativeSource returns the native verifier's C source.
func NativeSource(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(nativeSourcePath())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// NativeLibraryFrom builds a variant of the native verifier from code, as
// NativeLibrary builds the real one.
func NativeLibraryFrom(tb testing.TB, code []byte) string {
	tb.Helper()
	NativeLibrary(tb) // skips or fails as it does
	lib, err := buildNativeFrom(code)
	if err != nil {
		tb.Fatal(err)
	}
	return lib
}

func nativeSourcePath() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..", "pgext", "bulkhead_verifier.c")
}

func buildNative() (string, error) {
	code, err := os.ReadFile(nativeSourcePath())
	if err != nil {
		return "", err
	}
	return buildNativeFrom(code)
}

func buildNativeFrom(code []byte) (string, error) {
	pgConfig, err := serverPgConfig()
	if err != nil {
		return "", err
	}
	inc, err := exec.Command(pgConfig, "--includedir-server").Output()
	if err != nil {
		return "", fmt.Errorf("%s --includedir-server: %w", pgConfig, err)
	}
	incDir := strings.TrimSpace(string(inc))
	if _, err := os.Stat(filepath.Join(incDir, "postgres.h")); err != nil {
		return "", fmt.Errorf("no server headers in %s", incDir)
	}
	// Named after what it is built from, and kept: a template database
	// made in an earlier run names the library by its path.
	sum := sha256.Sum256(append(code, incDir...))
	dir := filepath.Join(os.TempDir(), "bulkhead-native-"+hex.EncodeToString(sum[:8]))
	lib := filepath.Join(dir, "bulkhead_verifier.so")
	if isFile(lib) {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// The server runs as another user: it must be able to read the library.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	tmp, err := os.CreateTemp(dir, "build-*.so")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	src := filepath.Join(dir, "bulkhead_verifier.c")
	if err := os.WriteFile(src, code, 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command(cc, "-O2", "-Wall", "-Werror", "-Wno-unused-parameter", "-fPIC", "-shared",
		"-I"+incDir, src, "-o", tmp.Name())
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), lib); err != nil {
		return "", err
	}
	return lib, nil
}

// serverPgConfig finds the pg_config of the test cluster's PostgreSQL:
// the one next to its server binaries, else the first on PATH.
func serverPgConfig() (string, error) {
	if bin, err := pgcluster.BinDir(); err == nil {
		if p := filepath.Join(bin, "pg_config"); isFile(p) {
			return p, nil
		}
	}
	return exec.LookPath("pg_config")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// installNative gives the database at url the native verifier, as
// `bulkhead verifier native` would.
func installNative(ctx context.Context, url string) error {
	lib, err := nativeLibrary()
	if err != nil {
		return fmt.Errorf("%s=native: cannot build the native verifier (%s): %w", EnvVerifier, NativeHeadersHint, err)
	}
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: url})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.InstallNativeVerifier(ctx, lib); err != nil {
		return err
	}
	// Tests count the events they cause: the template starts with none.
	_, err = db.Admin().Exec(ctx, `DELETE FROM bulkhead_audit.inbox WHERE event->>'action' = 'verifier:Native'`)
	return err
}
