package bulkhead_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goFiles lists the tree's Go files, tests included, outside hidden
// directories, testdata and node_modules.
func goFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != "." || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestPackageDocs fails any package without exactly one package comment.
func TestPackageDocs(t *testing.T) {
	dirs := map[string][]string{}
	for _, p := range goFiles(t) {
		if !strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = append(dirs[filepath.Dir(p)], p)
		}
	}
	for dir, files := range dirs {
		n := 0
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil {
				n++
			}
		}
		if n != 1 {
			t.Errorf("package in %s has %d package comments, want exactly 1", dir, n)
		}
	}
}

// TestMakeFuzzRunsEveryTarget fails when a fuzz target is missing from
// `make fuzz`, which the README says runs each of them, or when the
// Makefile names one that no longer exists.
func TestMakeFuzzRunsEveryTarget(t *testing.T) {
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	run := map[string]bool{}
	for _, m := range regexp.MustCompile(`test (\./\S*) -run '\^\$\$' -fuzz '\^(Fuzz\w+)\$\$' `).FindAllStringSubmatch(string(mk), -1) {
		run[filepath.Clean(m[1])+"."+m[2]] = true
	}
	if len(run) == 0 {
		t.Fatal("found no fuzz lines in the Makefile")
	}
	have := map[string]bool{}
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	for _, p := range goFiles(t) {
		if !strings.HasSuffix(p, "_test.go") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(src), -1) {
			have[filepath.Dir(p)+"."+m[1]] = true
		}
	}
	for k := range have {
		if !run[k] {
			t.Errorf("make fuzz does not run %s", k)
		}
	}
	for k := range run {
		if !have[k] {
			t.Errorf("make fuzz runs %s, which is no fuzz target", k)
		}
	}
}

// TestReadmeLayout fails when a package is missing from the README's
// Layout table.
func TestReadmeLayout(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start, end := strings.Index(s, "\n## Layout\n"), strings.Index(s, "\n## Status\n")
	if start < 0 || end < start {
		t.Fatal("README.md has no Layout section before Status")
	}
	layout := s[start:end]
	seen := map[string]bool{}
	for _, p := range goFiles(t) {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		dir := filepath.ToSlash(filepath.Dir(p))
		if dir == "." {
			dir = "bulkhead"
		}
		if !seen[dir] && !strings.Contains(layout, "`"+dir+"`") {
			t.Errorf("README.md's Layout does not list %s", dir)
		}
		seen[dir] = true
	}
}
