package tenantstate

import (
	"go/token"
	"strings"
)

// An okKey is a line of a file.
type okKey struct {
	file string
	line int
}

// An okComment is a //bulkhead:ok comment.
type okComment struct {
	reason bool // it gives a reason
	alone  bool // nothing but space precedes it on its line
}

// collectSuppressions finds the //bulkhead:ok comments of the package.
func (c *checker) collectSuppressions() {
	c.ok = map[okKey]okComment{}
	for _, f := range c.pass.Files {
		tf := c.pass.Fset.File(f.Pos())
		var src []byte
		for _, g := range f.Comments {
			for _, cm := range g.List {
				reason, ok := parseOK(cm.Text)
				if !ok {
					continue
				}
				if src == nil {
					src, _ = c.pass.ReadFile(tf.Name())
				}
				p := c.pass.Fset.Position(cm.Slash)
				start, end := tf.Offset(tf.LineStart(p.Line)), tf.Offset(cm.Slash)
				alone := end <= len(src) && strings.TrimSpace(string(src[start:end])) == ""
				key := okKey{p.Filename, p.Line}
				prev := c.ok[key]
				c.ok[key] = okComment{reason: reason || prev.reason, alone: alone || prev.alone}
			}
		}
	}
}

// parseOK reports whether text is a //bulkhead:ok comment, and whether it
// gives a reason.
func parseOK(text string) (reason, ok bool) {
	rest, found := strings.CutPrefix(text, okDirective)
	if !found || rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return false, false
	}
	return strings.TrimSpace(rest) != "", true
}

// suppression reports whether a //bulkhead:ok comment applies to a write
// at pos, on its line or alone on the line above, and whether it gives a
// reason.
func (c *checker) suppression(pos token.Pos) (reason, found bool) {
	p := c.pass.Fset.Position(pos)
	if ok, found := c.ok[okKey{p.Filename, p.Line}]; found {
		return ok.reason, true
	}
	if ok, found := c.ok[okKey{p.Filename, p.Line - 1}]; found && ok.alone {
		return ok.reason, true
	}
	return false, false
}

// suppressed reports whether a //bulkhead:ok comment with a reason applies
// to a write at pos.
func (c *checker) suppressed(pos token.Pos) bool {
	reason, found := c.suppression(pos)
	return found && reason
}
