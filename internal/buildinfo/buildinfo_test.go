package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
		{Key: "vcs.revision", Value: "2c6276c5e1a2b3c4d5e6f708192a3b4c5d6e7f80"},
		{Key: "vcs.time", Value: "2026-11-27T22:40:11Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, c := range []struct {
		name  string
		bi    *debug.BuildInfo
		want  Info
		short string
	}{
		{"no build information", nil,
			Info{Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}, "unknown"},
		{"a checkout with changes", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: "(devel)"}, Settings: vcs},
			Info{Version: "(devel)", Revision: "2c6276c5e1a2b3c4d5e6f708192a3b4c5d6e7f80", Modified: true,
				CommitTime: "2026-11-27T22:40:11Z", Go: "go1.26.8", Platform: "linux/arm64"}, "2c6276c5e1a2-modified"},
		{"a tagged release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: "v1.2.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}},
			Info{Version: "v1.2.0", Revision: "abc", Go: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH}, "abc"},
		{"a library of another program", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Path: "example.com/app", Version: "(devel)"}, Settings: vcs,
			Deps: []*debug.Module{{Path: "github.com/jackc/pgx/v5", Version: "v5.7.0"}, {Path: ModulePath, Version: "v1.3.0"}}},
			Info{Version: "v1.3.0", Go: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH}, "unknown"},
		{"a replaced library", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: ModulePath, Version: "v1.3.0", Replace: &debug.Module{Path: "../bulkhead"}}}},
			Info{Version: "v1.3.0", Go: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH}, "unknown"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := fromBuildInfo(c.bi)
			if got != c.want {
				t.Errorf("fromBuildInfo = %+v, want %+v", got, c.want)
			}
			if s := got.ShortRevision(); s != c.short {
				t.Errorf("ShortRevision = %q, want %q", s, c.short)
			}
		})
	}
}

// TestRead reads the test binary's own record: the toolchain that built
// it, and bulkhead as its main module.
func TestRead(t *testing.T) {
	i := Read()
	if i.Go != runtime.Version() {
		t.Errorf("Go = %q, want %q", i.Go, runtime.Version())
	}
	if i.Version == "unknown" || i.Version == "" {
		t.Errorf("Version = %q: the test binary's build information was not read", i.Version)
	}
}
