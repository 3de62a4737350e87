// Package buildinfo says which build of bulkhead is running: the module
// version, the commit it was built from and the Go toolchain, as the Go
// linker recorded them (runtime/debug.ReadBuildInfo). Nothing is set by
// hand at release time, so a binary cannot claim a version it is not.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// ModulePath is bulkhead's module.
const ModulePath = "github.com/bulkhead-dev/bulkhead"

// Info describes a build.
type Info struct {
	// Version is bulkhead's module version: a tag such as "v1.2.0", a
	// pseudo-version, or "(devel)" for a binary built inside a checkout.
	// When bulkhead is a library of another program, it is the version
	// that program's build required. "unknown" when the binary has no
	// build information.
	Version string
	// Revision is the commit the binary was built from, and Modified
	// whether the checkout had uncommitted changes then. Empty when the
	// build recorded none (go run, go test, -buildvcs=false, a build from
	// the module cache, or bulkhead built as a library).
	Revision string
	Modified bool
	// CommitTime is the commit's time (RFC 3339), empty when unknown.
	CommitTime string
	// Go is the toolchain that built the binary ("go1.26.8").
	Go string
	// Platform is GOOS/GOARCH.
	Platform string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, _ := debug.ReadBuildInfo() // nil without build information
	return fromBuildInfo(bi)
}

// fromBuildInfo reads Info from the linker's record; bi may be nil.
func fromBuildInfo(bi *debug.BuildInfo) Info {
	i := Info{Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return i
	}
	if bi.GoVersion != "" {
		i.Go = bi.GoVersion
	}
	if bi.Main.Path != ModulePath {
		// bulkhead is a library here: the main module's commit is not ours.
		for _, d := range bi.Deps {
			if d.Path == ModulePath {
				i.Version = d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					i.Version = d.Replace.Version
				}
			}
		}
		return i
	}
	if bi.Main.Version != "" {
		i.Version = bi.Main.Version
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		case "vcs.time":
			i.CommitTime = s.Value
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		i.Platform = goos + "/" + goarch
	}
	return i
}

// ShortRevision is the commit's first 12 hex digits, with "-modified"
// when the checkout had uncommitted changes; "unknown" when the build
// recorded no commit.
func (i Info) ShortRevision() string {
	r := i.Revision
	if r == "" {
		return "unknown"
	}
	if len(r) > 12 {
		r = r[:12]
	}
	if i.Modified {
		r += "-modified"
	}
	return r
}
