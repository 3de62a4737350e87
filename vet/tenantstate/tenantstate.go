package tenantstate

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// Analyzer reports state written on a code path reachable from a request
// handler that outlives the invocation: package-level variables, the
// receivers of method handlers and variables captured by handler closures.
// See the package documentation for the rules and their limits.
var Analyzer = &analysis.Analyzer{
	Name: "tenantstate",
	Doc:  analyzerDoc,
	URL:  "https://pkg.go.dev/github.com/bulkhead-dev/bulkhead/vet/tenantstate",
	Run:  run,
}

const analyzerDoc = `report state that a request handler writes and the next tenant can read

AWS Lambda reuses a warm execution environment across invocations, and the
next invocation may belong to another tenant; a long-running HTTP server
shares its memory between concurrent requests. The tenantstate analyzer
reports writes, on code paths reachable from a handler, to package-level
variables, to the receiver of a method handler and to variables captured by
a handler closure: such state outlives the invocation and can carry one
tenant's data to the next. A write to a package-level map is reported as a
cache that is not keyed by tenant, unless the map is bulkhead's
lambda.TenantCache.

Handlers are functions passed to aws-lambda-go's lambda.Start (and its
variants) or to bulkhead's lambda.Wrap, functions with the parameters
(http.ResponseWriter, *http.Request), functions named Handler or handler
whose first parameter is a context.Context, and functions whose doc comment
has the directive //bulkhead:handler. Reachability follows static calls
within the package only.

Writes in init, in main before lambda.Start, or in any function not
reachable from a handler are not reported, nor are sync/atomic numeric
counters, sync.Once initialisation that captures nothing of the handler,
and bulkhead's lambda.TenantCache. A report is suppressed by a comment
"//bulkhead:ok <reason>" on the line of the write or the line above; the
reason is required.`

// Import paths and names matched as strings, so that this package depends
// on neither module.
const (
	awsLambdaPath      = "github.com/aws/aws-lambda-go/lambda"
	bulkheadLambdaPath = "github.com/bulkhead-dev/bulkhead/lambda"
	tenantCacheName    = "TenantCache"
	handlerDirective   = "//bulkhead:handler"
	okDirective        = "//bulkhead:ok"
)

// A fnode is a function of the package being analysed: a declared function
// or method with a body, or a function literal.
type fnode struct {
	name   string
	decl   *ast.FuncDecl // nil for a literal
	lit    *ast.FuncLit  // nil for a declaration
	body   *ast.BlockStmt
	sig    *types.Signature
	recv   *types.Var   // the receiver of a method, else nil
	params []*types.Var // the receiver, if any, then the parameters
	test   bool         // declared in a _test.go file

	callees []*fnode     // functions called or referred to by the body
	sites   []*site      // writes in the body, outside nested literals
	calls   []*localCall // calls of package functions, for summaries
	writes  map[int]bool // params written through, by index into params
	reached []*fnode     // handlers this function is reachable from, in order
	handler bool         // whether this function is a handler
}

func (n *fnode) Pos() token.Pos {
	if n.lit != nil {
		return n.lit.Pos()
	}
	return n.decl.Pos()
}

func (n *fnode) End() token.Pos {
	if n.lit != nil {
		return n.lit.End()
	}
	return n.decl.End()
}

// contains reports whether pos is inside the function's source.
func (n *fnode) contains(pos token.Pos) bool { return n.Pos() <= pos && pos < n.End() }

// A paramRef locates a parameter: the function it belongs to and its index
// in that function's params.
type paramRef struct {
	node *fnode
	idx  int
}

// A localCall is a call from one package function to another.
type localCall struct {
	expr   *ast.CallExpr
	callee *fnode
}

// A checker holds the state of one pass.
type checker struct {
	pass  *analysis.Pass
	info  *types.Info
	nodes []*fnode // in source order

	funcs   map[*types.Func]*fnode
	lits    map[*ast.FuncLit]*fnode
	paramOf map[*types.Var]paramRef

	// aliases maps a local variable to what its value may refer to.
	aliases map[*types.Var][]ref
	// funcVars maps a variable to the expressions assigned to it, to
	// trace handlers and calls through variables holding functions.
	funcVars map[*types.Var][]ast.Expr
	// litVars maps a package-level variable initialised with a function
	// literal to that literal.
	litVars map[*types.Var]*fnode
	// allocs holds the anonymous variables standing for objects that
	// composite literals and append allocate.
	allocs map[ast.Expr]*types.Var

	ok map[okKey]okComment // the //bulkhead:ok comments, by line
}

func run(pass *analysis.Pass) (any, error) {
	c := &checker{
		pass:     pass,
		info:     pass.TypesInfo,
		funcs:    map[*types.Func]*fnode{},
		lits:     map[*ast.FuncLit]*fnode{},
		paramOf:  map[*types.Var]paramRef{},
		aliases:  map[*types.Var][]ref{},
		funcVars: map[*types.Var][]ast.Expr{},
		litVars:  map[*types.Var]*fnode{},
		allocs:   map[ast.Expr]*types.Var{},
	}
	c.collectFuncs()
	c.collectAliases()
	handlers := c.findHandlers()
	if len(handlers) == 0 {
		return nil, nil
	}
	for _, n := range c.nodes {
		c.scanBody(n)
	}
	c.collectSuppressions()
	c.summarise()
	c.reach(handlers)
	c.report()
	return nil, nil
}

// collectFuncs makes a fnode for every function declaration and function
// literal of the package, in source order.
func (c *checker) collectFuncs() {
	for _, f := range c.pass.Files {
		test := strings.HasSuffix(c.pass.Fset.File(f.Pos()).Name(), "_test.go")
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				fn, _ := c.info.Defs[d.Name].(*types.Func)
				if d.Body == nil || fn == nil {
					continue
				}
				sig := fn.Signature()
				n := &fnode{name: funcName(fn), decl: d, body: d.Body, sig: sig, recv: sig.Recv(), test: test}
				c.addNode(n)
				c.funcs[fn] = n
				c.collectLits(d.Body, n, n.name, test)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok {
						continue
					}
					for i, val := range vs.Values {
						prefix := "glob."
						if i < len(vs.Names) {
							prefix = vs.Names[i].Name
						}
						if lit, ok := ast.Unparen(val).(*ast.FuncLit); ok && i < len(vs.Names) {
							// var handler = func(...) {...} is named after the variable.
							n := c.addLit(lit, nil, prefix, test)
							if v, ok := c.info.Defs[vs.Names[i]].(*types.Var); ok {
								c.litVars[v] = n
							}
							continue
						}
						c.collectLits(val, nil, prefix, test)
					}
				}
			}
		}
	}
}

func (c *checker) addNode(n *fnode) {
	if n.recv != nil {
		n.params = append(n.params, n.recv)
	}
	for v := range n.sig.Params().Variables() {
		n.params = append(n.params, v)
	}
	for i, v := range n.params {
		c.paramOf[v] = paramRef{n, i}
	}
	c.nodes = append(c.nodes, n)
}

// addLit makes the fnode of a literal, then those of the literals inside it.
func (c *checker) addLit(lit *ast.FuncLit, outer *fnode, name string, test bool) *fnode {
	sig, _ := c.info.TypeOf(lit).(*types.Signature)
	if sig == nil {
		sig = types.NewSignatureType(nil, nil, nil, nil, nil, false)
	}
	n := &fnode{name: name, lit: lit, body: lit.Body, sig: sig, test: test}
	c.addNode(n)
	c.lits[lit] = n
	c.collectLits(lit.Body, n, name, test)
	return n
}

// collectLits adds the literals directly inside root, named as the Go
// runtime names them: F.func1, F.func2 in a declaration, F.func1.1 in a
// literal.
func (c *checker) collectLits(root ast.Node, outer *fnode, prefix string, test bool) {
	count := 0
	ast.Inspect(root, func(x ast.Node) bool {
		lit, ok := x.(*ast.FuncLit)
		if !ok {
			return true
		}
		count++
		var name string
		if outer != nil && outer.lit != nil {
			name = prefix + "." + strconv.Itoa(count)
		} else {
			name = prefix + ".func" + strconv.Itoa(count)
		}
		c.addLit(lit, outer, name, test)
		return false
	})
}

// funcName names a declared function as in a stack trace, without the
// package: F, T.M or (*T).M.
func funcName(fn *types.Func) string {
	recv := fn.Signature().Recv()
	if recv == nil {
		return fn.Name()
	}
	t := recv.Type()
	ptr := false
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t, ptr = p.Elem(), true
	}
	name := "?"
	if named, ok := types.Unalias(t).(*types.Named); ok {
		name = named.Obj().Name()
	}
	if ptr {
		return "(*" + name + ")." + fn.Name()
	}
	return name + "." + fn.Name()
}

// reach records, for every function, the handlers it is reachable from,
// visiting handlers in source order so that messages name the first.
func (c *checker) reach(handlers []*fnode) {
	for _, h := range handlers {
		seen := map[*fnode]bool{h: true}
		queue := []*fnode{h}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			n.reached = append(n.reached, h)
			for _, m := range n.callees {
				if !seen[m] {
					seen[m] = true
					queue = append(queue, m)
				}
			}
		}
	}
}

// summarise computes, to a fixed point, which parameters each function
// writes through, directly or by passing them on to another function that
// does. A write suppressed with a reason does not count, so one
// //bulkhead:ok at the write inside a helper covers all its callers.
func (c *checker) summarise() {
	mark := func(refs []ref) bool {
		changed := false
		for _, r := range refs {
			p, ok := c.paramOf[r.v]
			if ok && !r.storage && !p.node.writes[p.idx] {
				if p.node.writes == nil {
					p.node.writes = map[int]bool{}
				}
				p.node.writes[p.idx] = true
				changed = true
			}
		}
		return changed
	}
	for _, n := range c.nodes {
		for _, s := range n.sites {
			if !c.suppressed(s.at.Pos()) {
				mark(s.refs)
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, n := range c.nodes {
			for _, cl := range n.calls {
				if c.suppressed(cl.expr.Pos()) {
					continue
				}
				for idx := range cl.callee.writes {
					refs, _ := c.boundRefs(cl, idx)
					if mark(refs) {
						changed = true
					}
				}
			}
		}
	}
	// Each call that writes through a parameter is a write site of the
	// caller.
	for _, n := range c.nodes {
		for _, cl := range n.calls {
			idxs := make([]int, 0, len(cl.callee.writes))
			for idx := range cl.callee.writes {
				idxs = append(idxs, idx)
			}
			slices.Sort(idxs)
			for _, idx := range idxs {
				refs, path := c.boundRefs(cl, idx)
				if len(refs) == 0 {
					continue
				}
				what := "its parameter " + cl.callee.params[idx].Name()
				if cl.callee.recv != nil && idx == 0 {
					what = "its receiver"
				}
				n.sites = append(n.sites, &site{
					at:   cl.expr,
					refs: refs,
					path: path,
					via:  fmt.Sprintf(" by %s (through %s)", cl.callee.name, what),
				})
			}
		}
	}
}

// report reports every write site reachable from a handler whose memory
// outlives the invocation.
func (c *checker) report() {
	done := map[token.Pos]bool{}
	for _, n := range c.nodes {
		if len(n.reached) == 0 {
			continue
		}
		for _, s := range n.sites {
			if done[s.at.Pos()] {
				continue
			}
			msg := c.message(s, n.reached)
			if msg == "" {
				continue
			}
			done[s.at.Pos()] = true
			switch reason, found := c.suppression(s.at.Pos()); {
			case found && reason:
				continue
			case found:
				msg += "; //bulkhead:ok without a reason does not suppress this: say why it is safe, as in //bulkhead:ok <reason>"
			}
			c.pass.Reportf(s.at.Pos(), "%s", msg)
		}
	}
}

// message returns the diagnostic for s, or "" if s writes nothing that
// outlives the invocation of any of the handlers it is reachable from.
func (c *checker) message(s *site, handlers []*fnode) string {
	// Isolation: TenantCache is exempt because it keys every entry by the
	// tenant in ctx. Widening this match to other types would hide
	// caches that are not.
	if c.pathHasTenantCache(s.path) {
		return ""
	}
	for _, h := range handlers {
		for _, r := range s.refs {
			if isTenantCache(r.v.Type()) {
				continue
			}
			switch {
			case isGlobal(r.v):
				if name, ok := c.mapName(s, r.v); ok {
					return fmt.Sprintf("package-level map %s is written%s on a path reachable from handler %s; "+
						"it is not a tenant-keyed cache, and its entries outlive the invocation and can reach the next tenant "+
						"(keep it in the handler, or use lambda.TenantCache)", name, s.via, h.name)
				}
				return fmt.Sprintf("package-level variable %s is written%s on a path reachable from handler %s; "+
					"it outlives the invocation and can reach the next tenant "+
					"(keep it in the handler, or use a tenant-keyed cache)", c.varName(r.v), s.via, h.name)
			case !r.storage && h.recv != nil && r.v == h.recv && h.contains(s.at.Pos()):
				return fmt.Sprintf("receiver %s of handler %s is written%s; "+
					"the handler value outlives the invocation and can reach the next tenant "+
					"(keep per-invocation state in locals, or use a tenant-keyed cache)", r.v.Name(), h.name, s.via)
			case c.capturedLongLived(r.v, h, s):
				return fmt.Sprintf("variable %s, captured by handler %s, is written%s; "+
					"it outlives the invocation and can reach the next tenant "+
					"(declare it inside the handler, or use a tenant-keyed cache)", r.v.Name(), h.name, s.via)
			}
		}
	}
	return ""
}

// capturedLongLived reports whether v is a variable captured by the
// handler literal h, written in h, and declared in a function that is not
// reachable from any handler: main or a factory, which ran once, before
// any invocation.
func (c *checker) capturedLongLived(v *types.Var, h *fnode, s *site) bool {
	if h.lit == nil || !h.contains(s.at.Pos()) || h.contains(v.Pos()) || v.Pkg() != c.pass.Pkg || v.IsField() || v.Name() == "" {
		return false
	}
	var decl *fnode // the innermost function declaring v
	for _, n := range c.nodes {
		if n.contains(v.Pos()) && (decl == nil || decl.contains(n.Pos())) {
			decl = n
		}
	}
	return decl != nil && len(decl.reached) == 0
}

func (c *checker) varName(v *types.Var) string {
	if v.Pkg() != nil && v.Pkg() != c.pass.Pkg {
		return v.Pkg().Name() + "." + v.Name()
	}
	return v.Name()
}

// mapName names the map that s writes, if s writes a map's entries and
// the map is v or is selected from v: the expression written to, such as
// cache or registry.byID, when it starts at v, else v's name when v is
// itself a map. A map inside a copy of v is reported as a write to v.
func (c *checker) mapName(s *site, v *types.Var) (string, bool) {
	if !s.isMap {
		return "", false
	}
	if id := leftmost(s.path); id != nil && c.info.ObjectOf(id) == v && c.varName(v) == v.Name() {
		return types.ExprString(s.path), true
	}
	t := v.Type()
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	if _, ok := t.Underlying().(*types.Map); ok || isNamed(t, "sync", "Map") {
		return c.varName(v), true
	}
	return "", false
}

// leftmost returns the identifier an expression such as a.b[i].c starts
// from, or nil.
func leftmost(e ast.Expr) *ast.Ident {
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x
		case *ast.ParenExpr:
			e = x.X
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.UnaryExpr:
			e = x.X
		default:
			return nil
		}
	}
}

// isGlobal reports whether v is a package-level variable.
func isGlobal(v *types.Var) bool {
	return v.Pkg() != nil && !v.IsField() && v.Parent() == v.Pkg().Scope()
}

// isTenantCache reports whether t is bulkhead's lambda.TenantCache, a
// pointer to it, or an instantiation of it.
func isTenantCache(t types.Type) bool {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	named, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return false
	}
	obj := named.Origin().Obj()
	return obj.Pkg() != nil && obj.Pkg().Path() == bulkheadLambdaPath && obj.Name() == tenantCacheName
}

// pathHasTenantCache reports whether the written expression e, or any
// expression it is selected or indexed from, is a TenantCache.
func (c *checker) pathHasTenantCache(e ast.Expr) bool {
	for e != nil {
		if t := c.info.TypeOf(e); t != nil && isTenantCache(t) {
			return true
		}
		switch x := e.(type) {
		case *ast.ParenExpr:
			e = x.X
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.UnaryExpr:
			e = x.X
		default:
			return false
		}
	}
	return false
}
